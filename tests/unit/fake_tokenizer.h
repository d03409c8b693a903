// A stand-in tokenizer for the tiny test models, which carry no vocabulary:
// 96 ids; token i reads prefix + i + suffix ("t7") unless `pieces` names it; a
// text encodes byte by byte (byte b -> id b % byte_mod); BOS and EOS as set.
// Tests derive a named variant that sets what they need in its constructor.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace minigpt::test {

class FakeTokenizer : public Tokenizer {
public:
    int32_t byte_mod = 96;
    std::string prefix = "t", suffix;
    std::map<int32_t, std::string> pieces;  // token texts other than prefix + id + suffix
    int32_t bos = -1, eos = -1;
    bool bos_first = false;  // add_bos()

    std::vector<int32_t> encode(std::string_view text, bool) const override {
        std::vector<int32_t> ids;
        for (unsigned char c : text) ids.push_back(int32_t(c % byte_mod));
        return ids;
    }
    std::string decode(const std::vector<int32_t>&) const override { return {}; }
    std::string token_bytes(int32_t id) const override {
        const auto it = pieces.find(id);
        return it != pieces.end() ? it->second : prefix + std::to_string(id) + suffix;
    }
    int32_t vocab_size() const override { return 96; }
    int32_t bos_id() const override { return bos; }
    int32_t eos_id() const override { return eos; }
    bool add_bos() const override { return bos_first; }
    std::string name() const override { return "fake"; }
};

}  // namespace minigpt::test
