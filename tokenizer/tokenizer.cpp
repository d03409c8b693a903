// make_tokenizer: the one place that picks an implementation for a spec.
#include "tokenizer/tokenizer.h"

#include <stdexcept>

#include "tokenizer/gpt2_bpe.h"
#include "tokenizer/sentencepiece_tokenizer.h"

namespace minigpt {

namespace {
std::unique_ptr<Tokenizer> build(const TokenizerSpec& spec) {
    if (spec.model == "gpt2") return std::make_unique<Gpt2BpeTokenizer>(spec);
    if (spec.model == "sentencepiece") return std::make_unique<SentencePieceTokenizer>(spec);
    throw std::runtime_error("tokenizer model \"" + spec.model +
                             "\" is not supported (expected \"gpt2\" or \"sentencepiece\")");
}
}  // namespace

std::unique_ptr<Tokenizer> make_tokenizer(const TokenizerSpec& spec) {
    if (spec.source.empty()) return build(spec);
    try {
        return build(spec);
    } catch (const std::runtime_error& e) {
        throw std::runtime_error(spec.source + ": " + e.what());
    }
}

}  // namespace minigpt
