// GPT-2 byte-level BPE, giving the same ids as tiktoken's "gpt2" encoding.
//
// encode(text):
//   1. (allow_special only) split the text at special-token strings
//      ("<|endoftext|>"), each of which becomes its id;
//   2. split the rest with Gpt2PreTokenizer (gpt2_pretokenize.h);
//   3. a piece whose bytes are a whole token becomes that token (tiktoken's
//      shortcut, kept because it decides the result when a token cannot be
//      reached by merges of its own bytes);
//   4. otherwise start from one token per byte and repeatedly merge the
//      adjacent pair with the lowest merge rank, leftmost first.
// Ranks come from the merges list ("a b", rank = line index), the merged token
// is the token whose text is a+b. tiktoken instead ranks a pair by the id of its
// concatenated bytes; for GPT-2 (ids 256.. are merges in order) both give the
// same ids, which the golden tests check.
//
// Invalid UTF-8 never throws: the pre-tokenizer treats each invalid byte as a
// symbol (as if it were U+FFFD) and BPE works on the raw bytes, so
// decode(encode(x)) == x for every byte string x.
//
// encode() is const and keeps no state between calls: one tokenizer can be
// shared by threads.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tokenizer/bpe_tables.h"
#include "tokenizer/tokenizer.h"

namespace minigpt {

// llama.cpp's token types (tokenizer.ggml.token_type).
enum TokenType : int32_t {
    kTokenNormal = 1,
    kTokenUnknown = 2,
    kTokenControl = 3,
    kTokenUserDefined = 4,
    kTokenUnused = 5,
    kTokenByte = 6,
};

class Gpt2BpeTokenizer : public Tokenizer {
public:
    // Throws std::runtime_error naming the token or merge that is malformed.
    explicit Gpt2BpeTokenizer(const TokenizerSpec& spec);

    std::vector<int32_t> encode(std::string_view text, bool allow_special = false) const override;
    std::string decode(const std::vector<int32_t>& ids) const override;
    std::string token_bytes(int32_t id) const override;

    int32_t vocab_size() const override { return int32_t(bytes_.size()); }
    int32_t bos_id() const override { return bos_id_; }
    int32_t eos_id() const override { return eos_id_; }
    bool add_bos() const override { return add_bos_; }
    std::string name() const override { return "gpt2"; }

    // Appends the ids of one pre-token piece (steps 3 and 4 above).
    void encode_piece(std::string_view piece, std::vector<int32_t>* out) const {
        encode_piece(piece, hash_bytes(piece.data(), piece.size()), out);
    }
    // The same with h = hash_bytes(piece).
    void encode_piece(std::string_view piece, uint64_t h, std::vector<int32_t>* out) const;
    // Appends the ids of text with no special-token handling.
    void encode_ordinary(std::string_view text, std::vector<int32_t>* out) const;

private:
    void merge_short(std::string_view piece, std::vector<int32_t>* out) const;
    void merge_long(std::string_view piece, std::vector<int32_t>* out) const;

    std::vector<std::string> bytes_;  // id -> raw bytes (special tokens: their literal text)
    BytesToId piece_to_id_{&bytes_};  // ordinary tokens only: special text is never matched
    PairToMerge merges_;
    int32_t byte_token_[256];         // id of each single-byte token
    std::vector<std::pair<std::string, int32_t>> specials_;  // text -> id, for allow_special
    int32_t bos_id_, eos_id_;
    bool add_bos_;
};

}  // namespace minigpt
