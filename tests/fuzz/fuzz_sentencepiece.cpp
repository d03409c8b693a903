// Fuzz target: a SentencePiece tokenizer built from a serialized ModelProto,
// as Model::tokenizer_spec() hands it over from the GGUF key
// tokenizer.sentencepiece.model_proto. Input layout:
//   u16 little-endian L, then L bytes of text (clamped to what is there), then the proto.
// The text is encoded, its ids decoded, stream-decoded and looked up piece by piece.
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>

#include "fuzz_target.h"
#include "tokenizer/sentencepiece_tokenizer.h"
#include "tokenizer/tokenizer.h"

namespace minigpt::fuzz {

inline int fuzz_sentencepiece(const uint8_t* data, size_t size) {
    if (size < 2) return 0;
    uint16_t n_text;
    std::memcpy(&n_text, data, 2);
    const size_t text_len = std::min<size_t>(n_text, size - 2);
    const std::string text(reinterpret_cast<const char*>(data) + 2, text_len);
    TokenizerSpec spec;
    spec.model = "sentencepiece";
    spec.sentencepiece_proto.assign(reinterpret_cast<const char*>(data) + 2 + text_len, size - 2 - text_len);
    spec.bos_id = 1;
    spec.eos_id = 2;
    std::unique_ptr<Tokenizer> tok;
    try {
        (void)read_normalizer_flags(spec.sentencepiece_proto);
        tok = make_tokenizer(spec);
    } catch (const std::runtime_error&) {
        return 0;
    }
    try {
        std::vector<int32_t> ids = tok->encode(text);
        for (int32_t id : ids)
            if (id < 0 || id >= tok->vocab_size()) __builtin_trap();  // the library returned an id we cannot decode
        (void)tok->decode(ids);
        StreamDecoder sd(*tok);
        for (int32_t id : ids) {
            (void)sd.push(id);
            (void)tok->token_bytes(id);
            (void)tok->first_token_bytes(id);
        }
        (void)sd.flush();
        // Every id of the vocabulary once, and the ones just outside it.
        std::vector<int32_t> all;
        for (int32_t id = 0; id < tok->vocab_size() && id < 4096; ++id) all.push_back(id);
        (void)tok->decode(all);
        try { (void)tok->token_bytes(tok->vocab_size()); } catch (const std::runtime_error&) {}
        try { (void)tok->decode({-1}); } catch (const std::runtime_error&) {}
    } catch (const std::runtime_error&) {
    }
    return 0;
}

FUZZ_TARGET(fuzz_sentencepiece)

}  // namespace minigpt::fuzz
