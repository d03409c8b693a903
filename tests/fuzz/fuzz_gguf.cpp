// Fuzz target: the GGUF reader on arbitrary bytes (header, metadata, tensor
// table, every typed getter), then, on what parses, a model load, its tokenizer
// (GPT-2 BPE or SentencePiece from the metadata) and one decoding step.
#include <memory>
#include <stdexcept>

#include "fuzz_target.h"
#include "format/gguf.h"
#include "runtime/model.h"
#include "tokenizer/tokenizer.h"
#include "runtime/transformer.h"

namespace minigpt::fuzz {

inline int fuzz_gguf(const uint8_t* data, size_t size) {
    std::unique_ptr<GGUFFile> f;
    try {
        f = std::make_unique<GGUFFile>(std::make_unique<MappedFile>("fuzz.gguf", data, size));
    } catch (const std::runtime_error&) {
        return 0;
    }
    // Every value through every getter (each either returns or throws runtime_error).
    for (const auto& [key, v] : f->metadata()) {
        (void)GGUFFile::to_string(v, 4);
        try { (void)f->get_uint(key); } catch (const std::runtime_error&) {}
        try { (void)f->get_float(key); } catch (const std::runtime_error&) {}
        try { (void)f->get_bool(key); } catch (const std::runtime_error&) {}
        try { (void)f->get_string(key); } catch (const std::runtime_error&) {}
        try { (void)f->get_string_array(key); } catch (const std::runtime_error&) {}
        try { (void)f->get_float_array(key); } catch (const std::runtime_error&) {}
        try { (void)f->get_int_array(key); } catch (const std::runtime_error&) {}
        try { (void)f->get_bytes(key); } catch (const std::runtime_error&) {}
    }
    std::unique_ptr<Model> model;
    try {
        model = Model::load(std::move(f));
    } catch (const std::runtime_error&) {
        return 0;
    }
    (void)model->weight_bytes_per_token();
    try {
        const std::unique_ptr<Tokenizer> tok = make_tokenizer(model->tokenizer_spec());
        const std::vector<int32_t> ids = tok->encode("Hello, world! <|endoftext|> \xff\xfe", true);
        (void)tok->decode(ids);
        StreamDecoder sd(*tok);
        for (int32_t id : ids) (void)sd.push(id);
        (void)sd.flush();
    } catch (const std::runtime_error&) {
    }
    // One short prefill and one decoding step on the weights as they are (NaNs welcome).
    TransformerOptions to;
    to.n_ctx = std::min<int64_t>(model->config().n_ctx, 4);
    to.n_batch = 2;
    to.n_threads = 1;
    try {
        Transformer tf(*model, to);
        const int32_t prompt[2] = {0, int32_t(model->config().n_vocab - 1)};
        (void)tf.forward(prompt, std::min<int64_t>(2, to.n_ctx));
        if (to.n_ctx > 2) (void)tf.forward(prompt, 1);
    } catch (const std::runtime_error&) {
    }
    return 0;
}

FUZZ_TARGET(fuzz_gguf)

}  // namespace minigpt::fuzz
