// One fuzz entry point per file: FUZZ_TARGET(fn) makes `int fn(const uint8_t*, size_t)`
// the libFuzzer entry (LLVMFuzzerTestOneInput) when built with `make fuzz`
// (MINIGPT_LIBFUZZER defined), and leaves it an ordinary function otherwise, so
// the unit tests can include the same file and replay tests/fuzz/regressions/.
//
// A target returns normally for every input. Errors must be std::runtime_error
// (what the command line prints as one clear line); any other exception
// escaping a target (std::out_of_range from a substr, std::bad_alloc from an
// unchecked size, ...) is a bug and is reported as a crash.
#pragma once
#include <cstddef>
#include <cstdint>

#ifdef MINIGPT_LIBFUZZER
#define FUZZ_TARGET(fn) \
    extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) { return fn(data, size); }
#else
#define FUZZ_TARGET(fn)
#endif

// Repository root, for tables the targets load once (the tokenizer files).
#ifndef MINIGPT_ROOT
#define MINIGPT_ROOT "."
#endif
