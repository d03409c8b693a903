// Fuzz target: the GPT-2 byte-level BPE tokenizer (GPT-2's own 50 257-token
// vocabulary, loaded once from tests/data/tokenizer/gpt2). The first byte picks:
//   0: encode the rest as ordinary text; decode(encode(x)) must give x back
//   1: encode the rest with special tokens allowed; the round trip must hold too
//   2: decode the rest read as little-endian u16 ids (ids past the vocabulary throw)
//   3: stream-decode those ids (StreamDecoder), one at a time
//   4: the vocab.json parser on the rest
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>

#include "fuzz_target.h"
#include "tokenizer/gpt2_files.h"
#include "tokenizer/tokenizer.h"

namespace minigpt::fuzz {

inline const Tokenizer& gpt2_tokenizer() {
    static const std::unique_ptr<Tokenizer> tok = make_tokenizer(load_gpt2_files(
        MINIGPT_ROOT "/tests/data/tokenizer/gpt2/vocab.json", MINIGPT_ROOT "/tests/data/tokenizer/gpt2/merges.txt"));
    return *tok;
}

inline int fuzz_bpe(const uint8_t* data, size_t size) {
    if (size == 0) return 0;
    const Tokenizer& tok = gpt2_tokenizer();
    const std::string rest(reinterpret_cast<const char*>(data) + 1, size - 1);
    const int mode = data[0] % 5;
    if (mode <= 1) {
        const std::vector<int32_t> ids = tok.encode(rest, mode == 1);
        for (int32_t id : ids)
            if (id < 0 || id >= tok.vocab_size()) __builtin_trap();  // an id the model has no row for
        if (tok.decode(ids) != rest) __builtin_trap();                // encode lost or changed bytes
    } else if (mode <= 3) {
        std::vector<int32_t> ids(rest.size() / 2);
        for (size_t i = 0; i < ids.size(); ++i) {
            uint16_t v;
            std::memcpy(&v, rest.data() + 2 * i, 2);
            ids[i] = v;
        }
        try {
            if (mode == 2) {
                (void)tok.decode(ids);
            } else {
                StreamDecoder sd(tok);
                std::string text;
                for (int32_t id : ids) text += sd.push(id);
                text += sd.flush();
            }
        } catch (const std::runtime_error&) {
        }
    } else {
        try {
            (void)parse_vocab_json(rest, "fuzz/vocab.json");
        } catch (const std::runtime_error&) {
        }
    }
    return 0;
}

FUZZ_TARGET(fuzz_bpe)

}  // namespace minigpt::fuzz
