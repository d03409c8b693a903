# minigpt — one Makefile drives build, tests, sanitizers, benchmarks.
# Scripts run on Debian's python3 (numpy, torch, sentencepiece come from apt, not pip).
PYTHON   := /usr/bin/python3
CXX      ?= g++
BUILD    := build
STD      := -std=c++17
WARN     := -Wall -Wextra -Wshadow -Wno-unused-parameter
OPT      ?= -O3 -march=native
# No -ffast-math: it breaks GELU's tanh and softmax's max subtraction guarantees.
CXXFLAGS := $(STD) $(OPT) $(WARN) -g -fno-math-errno -pthread
CPPFLAGS := -Isrc -Itokenizer -MMD -MP
LDLIBS   := -lopenblas -lsentencepiece -lpthread

LIB_SRCS  := $(wildcard src/*.cpp tokenizer/*.cpp)
CLI_SRCS  := $(wildcard src/cli/*.cpp)
TEST_SRCS := $(wildcard tests/unit/*.cpp)

# $(call objs,DIR,SRCS)
objs = $(patsubst %.cpp,$(1)/obj/%.o,$(2))

DEPS_STAMP := $(BUILD)/.deps-ok

.PHONY: all deps run test unit asan bench fuzz clean model
all: $(BUILD)/minigpt

deps: $(DEPS_STAMP)
$(DEPS_STAMP): scripts/install_deps.sh
	@bash scripts/install_deps.sh
	@mkdir -p $(BUILD) && touch $@

# ---- release build --------------------------------------------------------
$(BUILD)/obj/%.o: %.cpp | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(CXX) $(CPPFLAGS) $(CXXFLAGS) -c $< -o $@

$(BUILD)/libminigpt.a: $(call objs,$(BUILD),$(LIB_SRCS))
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/minigpt: $(call objs,$(BUILD),$(CLI_SRCS)) $(BUILD)/libminigpt.a
	$(CXX) $(CXXFLAGS) $^ -o $@ $(LDLIBS)

$(BUILD)/unit_tests: $(call objs,$(BUILD),$(TEST_SRCS)) $(BUILD)/libminigpt.a
	$(CXX) $(CXXFLAGS) $^ -o $@ $(LDLIBS)

# ---- sanitizer build (AddressSanitizer + UndefinedBehaviorSanitizer) ------
ASAN       := $(BUILD)/asan
ASAN_FLAGS := $(STD) -O1 -march=native $(WARN) -g -pthread -fno-omit-frame-pointer \
              -fsanitize=address,undefined -fno-sanitize-recover=undefined
$(ASAN)/obj/%.o: %.cpp | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(CXX) $(CPPFLAGS) $(ASAN_FLAGS) -c $< -o $@
$(ASAN)/minigpt: $(call objs,$(ASAN),$(CLI_SRCS) $(LIB_SRCS))
	$(CXX) $(ASAN_FLAGS) $^ -o $@ $(LDLIBS)
$(ASAN)/unit_tests: $(call objs,$(ASAN),$(TEST_SRCS) $(LIB_SRCS))
	$(CXX) $(ASAN_FLAGS) $^ -o $@ $(LDLIBS)

# ---- tests ------------------------------------------------------------------
# tests/run.py runs the doctest unit tests, the Python tests and the end-to-end
# tests against one build and prints a final "N passed, N failed" line.
test: $(BUILD)/minigpt $(BUILD)/unit_tests
	$(PYTHON) tests/run.py --build $(BUILD)

unit: $(BUILD)/unit_tests
	$(BUILD)/unit_tests

asan: $(ASAN)/minigpt $(ASAN)/unit_tests
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
bench: $(BUILD)/minigpt
	$(BUILD)/minigpt bench -o $(BUILD)/bench.md
