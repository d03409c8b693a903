# minigpt — one Makefile drives build, tests, sanitizers, benchmarks.
# Scripts run on Debian's python3 (numpy, torch, sentencepiece come from apt, not pip).
PYTHON   := /usr/bin/python3
CXX      ?= g++
BUILD    := build
STD      := -std=c++17
WARN     := -Wall -Wextra -Wshadow -Wno-unused-parameter
OPT      ?= -O3 -march=native
# Line tables (files and lines in backtraces, perf and sanitizer reports) cost a quarter
# less compile time than full debug information; `make DEBUG=-g` for gdb's variables.
DEBUG    ?= -g1
# No -ffast-math: it breaks GELU's tanh and softmax's max subtraction guarantees.
CXXFLAGS := $(STD) $(OPT) $(WARN) $(DEBUG) -fno-math-errno -pthread
# cxxopts without std::regex (its own hand-written specifier and number parsing, same
# flags accepted): cli/flags.cpp compiles in half the time.
CPPFLAGS := -Isrc -I. -MMD -MP -DCXXOPTS_NO_REGEX
LDLIBS   := -lsentencepiece -lpthread -ldl

# The viewer page (viewer/*) as two C++ strings, generated into the build folder (rule below).
VIEWER_GEN := $(BUILD)/gen/viewer/assets_head.cpp $(BUILD)/gen/viewer/assets_tail.cpp
LIB_SRCS  := $(filter-out src/cli/%,$(wildcard src/*/*.cpp)) $(wildcard tokenizer/*.cpp) $(VIEWER_GEN)
CLI_SRCS  := $(wildcard src/cli/*.cpp)
# The unit tests also check the flags the analysis commands share (cli/heads_flags.h),
# which parse through cli/flags.cpp.
TEST_SRCS := $(wildcard tests/unit/*.cpp) src/cli/flags.cpp

# $(call objs,DIR,SRCS)
objs = $(patsubst %.cpp,$(1)/obj/%.o,$(2))

# Every core unless -j is given: a fresh `make run` compiles in parallel.
ifeq ($(filter -j%,$(MAKEFLAGS)),)
MAKEFLAGS += -j$(shell nproc)
endif

# Building and running need only the compiler and the libraries (make, make run);
# the tests, fuzzing and benchmarks also need the reference engines (make deps).
DEPS_STAMP      := $(BUILD)/.deps-ok
TEST_DEPS_STAMP := $(BUILD)/.test-deps-ok

.PHONY: all deps run test unit asan bench fuzz fuzz-build clean model
all: $(BUILD)/minigpt

deps: $(TEST_DEPS_STAMP)
$(DEPS_STAMP): scripts/install_deps.sh
	@bash scripts/install_deps.sh
	@mkdir -p $(BUILD) && touch $@
$(TEST_DEPS_STAMP): scripts/install_deps.sh
	@bash scripts/install_deps.sh --test
	@mkdir -p $(BUILD) && touch $@ $(DEPS_STAMP)

# ---- release build --------------------------------------------------------
$(BUILD)/obj/%.o: %.cpp | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(CXX) $(CPPFLAGS) $(CXXFLAGS) -c $< -o $@
# The command line parses flags, prints and calls the library; nothing hot is in it: at
# -O1 it builds in about half of -O3's time. Only cli/flags.cpp compiles cxxopts (~3 s a
# file at -O1, ~8 s with the sanitizers; it was once compiled by each of 23 files).
# JSON (nlohmann) and the viewer page are template-heavy and not hot either: -O2. The test
# drivers (doctest; the work they check is the library's) get -O1, a fifth less compile time
# than -O2. The forward pass, kernels, tokenizers and analyses stay at -O3.
$(BUILD)/obj/src/cli/%.o $(BUILD)/obj/tests/%.o: CXXFLAGS := $(subst -O3,-O1,$(CXXFLAGS))
$(BUILD)/obj/src/util/json.o $(BUILD)/obj/src/viewer/%.o: CXXFLAGS := $(subst -O3,-O2,$(CXXFLAGS))

# Generated sources: the viewer page's head and tail strings, by a script that
# needs only Debian's python3-minimal. Their objects come from the %.o rule of
# each build flavour (release, asan, fuzz) like any source: obj/$(BUILD)/gen/...
$(VIEWER_GEN): $(BUILD)/gen/viewer/assets_%.cpp: scripts/embed_viewer.py scripts/atomic_file.py \
                viewer/viewer.html viewer/viewer.css viewer/viewer.js | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(PYTHON) scripts/embed_viewer.py $* $@

$(BUILD)/libminigpt.a: $(call objs,$(BUILD),$(LIB_SRCS))
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/minigpt: $(call objs,$(BUILD),$(CLI_SRCS)) $(BUILD)/libminigpt.a
	$(CXX) $(CXXFLAGS) $^ -o $@ $(LDLIBS)

$(BUILD)/unit_tests: $(call objs,$(BUILD),$(TEST_SRCS)) $(BUILD)/libminigpt.a
	$(CXX) $(CXXFLAGS) $^ -o $@ $(LDLIBS)

# ---- sanitizer build (AddressSanitizer + UndefinedBehaviorSanitizer) ------
ASAN       := $(BUILD)/asan
ASAN_FLAGS := $(STD) -O1 -march=native $(WARN) $(DEBUG) -pthread -fno-omit-frame-pointer \
              -fsanitize=address,undefined -fno-sanitize-recover=undefined
$(ASAN)/obj/%.o: %.cpp | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(CXX) $(CPPFLAGS) $(ASAN_FLAGS) -c $< -o $@
# The same files as above are not hot: -O0 under the sanitizers, a quarter less compile
# time (the test drivers are 40 % of this build's); the library stays at -O1 for speed.
$(ASAN)/obj/src/cli/%.o $(ASAN)/obj/tests/%.o $(ASAN)/obj/src/util/json.o $(ASAN)/obj/src/viewer/%.o: \
    ASAN_FLAGS := $(subst -O1,-O0,$(ASAN_FLAGS))
$(ASAN)/minigpt: $(call objs,$(ASAN),$(CLI_SRCS) $(LIB_SRCS))
	$(CXX) $(ASAN_FLAGS) $^ -o $@ $(LDLIBS)
$(ASAN)/unit_tests: $(call objs,$(ASAN),$(TEST_SRCS) $(LIB_SRCS))
	$(CXX) $(ASAN_FLAGS) $^ -o $@ $(LDLIBS)

# ---- fuzzing (clang's libFuzzer, with ASan + UBSan) -------------------------
# tests/fuzz/fuzz_*.cpp: the GGUF reader and model load, the GPT-2 BPE tokenizer,
# SentencePiece from a serialized model, the command line. `make fuzz` builds
# them, seeds build/fuzz/corpus from the test files and runs each for
# FUZZ_SECONDS, FUZZ_JOBS at a time (see tests/fuzz/run.sh). FUZZ_OPT=-O0 halves
# the build time (CI) for slower targets; objects are not rebuilt when it changes.
FUZZ         := $(BUILD)/fuzz
FUZZ_CXX     ?= clang++
FUZZ_SECONDS ?= 120
FUZZ_JOBS    ?= 2
FUZZ_TARGETS := gguf bpe sentencepiece cli checkpoint
FUZZ_OPT     ?= -O1
FUZZ_FLAGS   := $(STD) $(FUZZ_OPT) -march=native $(WARN) -Wno-unknown-pragmas -Wno-unknown-warning-option \
                -Wno-unused-private-field -gline-tables-only -pthread -fno-omit-frame-pointer \
                -fsanitize=address,undefined -fno-sanitize-recover=undefined \
                -DMINIGPT_LIBFUZZER -DMINIGPT_ROOT='"$(CURDIR)"'
FUZZ_LIB     := $(call objs,$(FUZZ),$(LIB_SRCS))
$(FUZZ)/obj/%.o: %.cpp | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(FUZZ_CXX) $(CPPFLAGS) -Itests/fuzz $(FUZZ_FLAGS) -fsanitize=fuzzer-no-link $(FUZZ_EXTRA) -c $< -o $@
# The CLI target calls the real main(), renamed.
$(FUZZ)/obj/src/cli/main.o: FUZZ_EXTRA := -Dmain=minigpt_main
$(FUZZ)/fuzz_cli: $(FUZZ)/obj/tests/fuzz/fuzz_cli.o $(call objs,$(FUZZ),$(CLI_SRCS)) $(FUZZ_LIB)
	$(FUZZ_CXX) $(FUZZ_FLAGS) -fsanitize=fuzzer $^ -o $@ $(LDLIBS)
$(FUZZ)/fuzz_%: $(FUZZ)/obj/tests/fuzz/fuzz_%.o $(FUZZ_LIB)
	$(FUZZ_CXX) $(FUZZ_FLAGS) -fsanitize=fuzzer $^ -o $@ $(LDLIBS)
.SECONDARY: $(patsubst %,$(FUZZ)/obj/tests/fuzz/fuzz_%.o,$(FUZZ_TARGETS))
$(FUZZ)/corpus/cli.dict: tests/fuzz/make_corpus.py
	$(PYTHON) tests/fuzz/make_corpus.py $(FUZZ)/corpus
fuzz-build: | $(TEST_DEPS_STAMP)
fuzz-build: $(addprefix $(FUZZ)/fuzz_,$(FUZZ_TARGETS)) $(FUZZ)/corpus/cli.dict
fuzz: fuzz-build
	bash tests/fuzz/run.sh $(FUZZ) $(FUZZ_SECONDS) $(FUZZ_JOBS) $(FUZZ_TARGETS)

# ---- tests ------------------------------------------------------------------
# tests/run.py runs the doctest unit tests, the Python tests and the end-to-end
# tests against one build and prints a final "N passed, N failed" line.
test: $(BUILD)/minigpt $(BUILD)/unit_tests | $(TEST_DEPS_STAMP)
	$(PYTHON) scripts/check_includes.py
	$(PYTHON) tests/run.py --build $(BUILD)

unit: $(BUILD)/unit_tests
	$(BUILD)/unit_tests

asan: $(ASAN)/minigpt $(ASAN)/unit_tests | $(TEST_DEPS_STAMP)
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  $(PYTHON) tests/run.py --build $(ASAN) --sanitized

run: $(BUILD)/minigpt
	$(BUILD)/minigpt generate -m model/minigpt-brown.gguf -p "The old man looked at the" -n 120 --temp 0.8 --top-p 0.95 --repeat-penalty 1.1 --seed 42

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

# llama-bench's protocol on GPT-2-124M-shaped models (f32, f16, q8_0; 1 and 2
# threads), llama.cpp interleaved when scripts/llama is installed; the report
# (machine, table, tokenizer speed, peak memory) also goes to build/bench.md.
bench: $(BUILD)/minigpt | $(TEST_DEPS_STAMP)
	$(BUILD)/minigpt bench -o $(BUILD)/bench.md
