// Replays every input in tests/fuzz/regressions/{gguf,bpe,sentencepiece,checkpoint}/ (each
// once crashed a fuzz target, or stands for a bug found by hand) through the
// same entry points `make fuzz` runs: each must return normally. The CLI
// target's regressions are replayed by tests/e2e/test_bad_inputs.py through the binary.
#include <dirent.h>

#include <algorithm>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "../fuzz/fuzz_bpe.cpp"
#include "../fuzz/fuzz_checkpoint.cpp"
#include "../fuzz/fuzz_gguf.cpp"
#include "../fuzz/fuzz_sentencepiece.cpp"

namespace {

std::vector<std::string> regression_files(const std::string& target) {
    const std::string dir = "tests/fuzz/regressions/" + target;
    std::vector<std::string> files;
    if (DIR* d = opendir(dir.c_str())) {
        while (const dirent* e = readdir(d))
            if (e->d_name[0] != '.') files.push_back(dir + "/" + e->d_name);
        closedir(d);
    }
    std::sort(files.begin(), files.end());
    return files;
}

void replay(const std::string& target, int (*fn)(const uint8_t*, size_t)) {
    for (const std::string& path : regression_files(target)) {
        std::ifstream f(path, std::ios::binary);
        const std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
        CAPTURE(path);
        CHECK_NOTHROW(fn(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()));
    }
}

}  // namespace

TEST_CASE("fuzz regressions: GGUF reader and model load") { replay("gguf", minigpt::fuzz::fuzz_gguf); }
TEST_CASE("fuzz regressions: GPT-2 BPE tokenizer") { replay("bpe", minigpt::fuzz::fuzz_bpe); }
TEST_CASE("fuzz regressions: SentencePiece from a serialized model") {
    replay("sentencepiece", minigpt::fuzz::fuzz_sentencepiece);
}
TEST_CASE("fuzz regressions: native checkpoint readers") { replay("checkpoint", minigpt::fuzz::fuzz_checkpoint); }
