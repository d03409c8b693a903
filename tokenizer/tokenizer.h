// One interface for every tokenizer minigpt runs (GPT-2 byte-level BPE,
// SentencePiece). Nothing here depends on the model code: the runtime fills a
// TokenizerSpec from GGUF metadata (or from vocab.json + merges.txt) and asks
// make_tokenizer() for the right implementation.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace minigpt {

// Everything a tokenizer can be built from, independent of the file it came from.
struct TokenizerSpec {
    std::string model;                  // "gpt2" (byte-level BPE) or "sentencepiece"
    std::vector<std::string> tokens;    // id -> token text as stored (GPT-2: byte-to-unicode form)
    std::vector<std::string> merges;    // "a b" pairs in rank order (GPT-2 BPE)
    std::vector<float> scores;          // optional per-token scores
    std::vector<int32_t> token_types;   // optional llama.cpp token types
    std::string sentencepiece_proto;    // serialized SentencePiece ModelProto (SentencePiece only)
    int32_t bos_id = -1;
    int32_t eos_id = -1;
    bool add_bos = false;               // prepend BOS when encoding a document
    std::string source;                 // the file(s) it came from; prefixes make_tokenizer's errors
};

class Tokenizer {
public:
    virtual ~Tokenizer() = default;

    // Text -> ids. Special-token text (e.g. "<|endoftext|>") is ordinary text
    // unless allow_special is true. Never throws on invalid UTF-8. Never adds
    // BOS: the caller prepends bos_id() when add_bos() is true (as llama.cpp does).
    virtual std::vector<int32_t> encode(std::string_view text, bool allow_special = false) const = 0;
    // Ids -> text, exactly the inverse of encode for valid UTF-8 input.
    virtual std::string decode(const std::vector<int32_t>& ids) const = 0;
    // The raw bytes this token stands for when it appears after other tokens
    // (may be an incomplete UTF-8 sequence). Used by StreamDecoder.
    virtual std::string token_bytes(int32_t id) const = 0;
    // Bytes the decoder drops from the start of a text (SentencePiece's dummy-prefix space).
    virtual std::string_view leading_prefix_to_strip() const { return {}; }
    // The bytes of this token when it is the first one to yield any text, as
    // decode() renders it there: SentencePiece drops the dummy-prefix space from
    // a leading word piece (not from a byte piece or <unk>). Used by StreamDecoder.
    virtual std::string first_token_bytes(int32_t id) const { return token_bytes(id); }

    virtual int32_t vocab_size() const = 0;
    virtual int32_t bos_id() const = 0;
    virtual int32_t eos_id() const = 0;
    virtual bool add_bos() const = 0;
    virtual std::string name() const = 0;
};

// Builds the tokenizer the spec describes; throws std::runtime_error with a
// message naming what is wrong (and spec.source, the file, when set).
std::unique_ptr<Tokenizer> make_tokenizer(const TokenizerSpec& spec);

// Decoding that is safe while streaming: bytes of a token that ends inside a
// UTF-8 sequence are held back until the sequence completes. Everything push()
// and flush() return, joined, equals decode(ids) when that is valid UTF-8;
// otherwise each byte that cannot be part of valid UTF-8 becomes U+FFFD (as
// SentencePiece's decoder does), so every returned string is valid UTF-8.
class StreamDecoder {
public:
    explicit StreamDecoder(const Tokenizer& tok) : tok_(tok) {}
    std::string push(int32_t id);   // text that is complete so far
    std::string flush();            // whatever is left (invalid tails become U+FFFD)
private:
    const Tokenizer& tok_;
    std::string pending_;
    bool first_ = true;
};

}  // namespace minigpt
