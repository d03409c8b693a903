// The tokenizer tests' data in tests/data/tokenizer/ (golden ids, vocabularies,
// SentencePiece models), read relative to the repository root.
#pragma once
#include <doctest/doctest.h>

#include <fstream>
#include <sstream>
#include <string>

#include "tokenizer/gpt2_files.h"
#include "tokenizer/tokenizer.h"

namespace minigpt::test {

inline const std::string kTokenizerData = "tests/data/tokenizer/";

// A whole file; the test fails naming the path when it cannot be opened.
inline std::string read_all(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    REQUIRE_MESSAGE(f.good(), "cannot open " << path << " (run from the repository root)");
    std::ostringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

// "68690a" -> "hi\n": the golden files write texts as hex so that any byte survives.
inline std::string from_hex(const std::string& hex) {
    std::string out;
    for (size_t i = 0; i + 1 < hex.size(); i += 2) out.push_back(char(std::stoi(hex.substr(i, 2), nullptr, 16)));
    return out;
}

// GPT-2's vocab.json + merges.txt as scripts/gen_bpe_golden.mjs wrote them, loaded once.
inline const TokenizerSpec& gpt2_spec() {
    static const TokenizerSpec spec =
        load_gpt2_files(kTokenizerData + "gpt2/vocab.json", kTokenizerData + "gpt2/merges.txt");
    return spec;
}

}  // namespace minigpt::test
