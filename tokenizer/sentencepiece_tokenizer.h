// SentencePiece models (llama-style GGUF: tokenizer.ggml.model "llama" with
// tokenizer.sentencepiece.model_proto), run by libsentencepiece itself, so that
// ids are the library's by construction.
//
// encode() never adds BOS/EOS: the runtime prepends bos_id() when add_bos() is
// true (GGUF tokenizer.ggml.add_bos_token), as llama.cpp does. SentencePiece
// normalizes invalid UTF-8 to U+FFFD before encoding, so decode(encode(x)) == x
// holds only for valid UTF-8 (and, with the identity normalizer, for it always).
// Special-token text is never parsed (allow_special is ignored): control pieces
// such as <s> cannot be produced from text by SentencePiece.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace sentencepiece {
class SentencePieceProcessor;
}

namespace minigpt {

// The NormalizerSpec flags that change decoding, read from the serialized ModelProto.
struct SentencePieceNormalizerFlags {
    bool add_dummy_prefix = true;          // protobuf default
    bool remove_extra_whitespaces = true;  // protobuf default
};
// Throws std::runtime_error if the bytes are not a well-formed protobuf message.
SentencePieceNormalizerFlags read_normalizer_flags(const std::string& model_proto);

class SentencePieceTokenizer : public Tokenizer {
public:
    // spec.sentencepiece_proto: the serialized ModelProto (a .model file's bytes).
    // spec.tokens, if given, must start with the model's pieces; more tokens
    // (GGUF padding up to the embedding size) are accepted and decode to nothing.
    explicit SentencePieceTokenizer(const TokenizerSpec& spec);
    ~SentencePieceTokenizer() override;

    std::vector<int32_t> encode(std::string_view text, bool allow_special = false) const override;
    std::string decode(const std::vector<int32_t>& ids) const override;
    // Piece text with U+2581 as a space; a byte piece <0xAB> is that one byte;
    // control pieces are empty; <unk> is the library's " \u2047 ".
    std::string token_bytes(int32_t id) const override;
    // " " when the model adds a dummy-prefix space (add_dummy_prefix or
    // remove_extra_whitespaces), as SentencePiece's decoder strips it.
    std::string_view leading_prefix_to_strip() const override;
    // token_bytes without that leading space for word pieces (not for byte
    // pieces or <unk>), as SentencePiece decodes a text's first piece. (With
    // remove_extra_whitespaces the library strips every leading space piece;
    // only the first is dropped here.)
    std::string first_token_bytes(int32_t id) const override;

    int32_t vocab_size() const override { return int32_t(pieces_.size()); }
    int32_t bos_id() const override { return bos_id_; }
    int32_t eos_id() const override { return eos_id_; }
    bool add_bos() const override { return add_bos_; }
    std::string name() const override { return "sentencepiece"; }

private:
    std::unique_ptr<sentencepiece::SentencePieceProcessor> sp_;
    int32_t n_pieces_ = 0;             // the model's pieces; ids past them are GGUF padding
    std::vector<std::string> pieces_;  // id -> token_bytes ("" for padding)
    std::vector<bool> word_piece_;     // not control, <unk> or a byte piece
    SentencePieceNormalizerFlags flags_;
    int32_t bos_id_, eos_id_;
    bool add_bos_;
};

}  // namespace minigpt
