// Builds small random GPT-2 GGUF files for the unit tests, with the C++ writer, and loads them.
#pragma once
#include <cstdint>
#include <cstdio>
#include <memory>
#include <random>
#include <string>
#include <unistd.h>
#include <vector>

#include "format/f16.h"
#include "format/gguf_writer.h"
#include "runtime/model.h"

namespace minigpt::test {

struct TinyShape {
    int64_t n_vocab = 96, n_ctx = 64, n_embd = 32, n_ff = 128, n_layer = 2, n_head = 4;
};

// A temporary path removed when the object goes out of scope.
struct TempPath {
    std::string path;
    explicit TempPath(const std::string& name)
        : path("/tmp/minigpt_test_" + std::to_string(::getpid()) + "_" + name) {}
    ~TempPath() { std::remove(path.c_str()); }
};

// Keeps the tensor data alive while the writer needs it.
struct TinyModelData {
    std::vector<std::vector<uint8_t>> buffers;
    GGUFWriter writer;
};

inline void add_random(TinyModelData& m, const std::string& name, std::vector<int64_t> ne, DType type,
                       std::mt19937& rng, float scale, float offset = 0.f) {
    std::normal_distribution<float> nd(0.f, 1.f);
    int64_t n = 1;
    for (int64_t x : ne) n *= x;
    std::vector<uint8_t> buf;
    if (type == DType::F32) {
        buf.resize(size_t(n) * 4);
        float* p = reinterpret_cast<float*>(buf.data());
        for (int64_t i = 0; i < n; ++i) p[i] = offset + scale * nd(rng);
    } else if (type == DType::F16) {
        buf.resize(size_t(n) * 2);
        uint16_t* p = reinterpret_cast<uint16_t*>(buf.data());
        for (int64_t i = 0; i < n; ++i) p[i] = f32_to_f16(offset + scale * nd(rng));
    } else {  // q8_0
        buf.resize(size_t(n / kQ8_0Block) * sizeof(BlockQ8_0));
        BlockQ8_0* b = reinterpret_cast<BlockQ8_0*>(buf.data());
        std::uniform_int_distribution<int> q(-127, 127);
        for (int64_t i = 0; i < n / kQ8_0Block; ++i) {
            b[i].scale = f32_to_f16(scale / 64.f);
            for (int j = 0; j < kQ8_0Block; ++j) b[i].q[j] = int8_t(q(rng));
        }
    }
    m.buffers.push_back(std::move(buf));
    m.writer.add_tensor(name, type, ne, m.buffers.back().data());
}

// Fills a writer with a complete random GPT-2. Matrices use `wtype`; norms,
// biases and position embeddings stay f32 (as llama.cpp's converter writes them).
inline void build_tiny_gpt2(TinyModelData& m, const TinyShape& s, DType wtype, uint32_t seed, bool with_output = true) {
    std::mt19937 rng(seed);
    GGUFWriter& w = m.writer;
    w.set_string("general.architecture", "gpt2");
    w.set_string("general.name", "tiny-test");
    w.set_u32("gpt2.context_length", uint32_t(s.n_ctx));
    w.set_u32("gpt2.embedding_length", uint32_t(s.n_embd));
    w.set_u32("gpt2.feed_forward_length", uint32_t(s.n_ff));
    w.set_u32("gpt2.block_count", uint32_t(s.n_layer));
    w.set_u32("gpt2.attention.head_count", uint32_t(s.n_head));
    w.set_f32("gpt2.attention.layer_norm_epsilon", 1e-5f);
    const int64_t d = s.n_embd;
    add_random(m, "token_embd.weight", {d, s.n_vocab}, wtype, rng, 0.3f);
    add_random(m, "position_embd.weight", {d, s.n_ctx}, DType::F32, rng, 0.1f);
    for (int64_t l = 0; l < s.n_layer; ++l) {
        const std::string p = "blk." + std::to_string(l) + ".";
        add_random(m, p + "attn_norm.weight", {d}, DType::F32, rng, 0.1f, 1.f);
        add_random(m, p + "attn_norm.bias", {d}, DType::F32, rng, 0.05f);
        add_random(m, p + "attn_qkv.weight", {d, 3 * d}, wtype, rng, 0.2f);
        add_random(m, p + "attn_qkv.bias", {3 * d}, DType::F32, rng, 0.05f);
        add_random(m, p + "attn_output.weight", {d, d}, wtype, rng, 0.2f);
        add_random(m, p + "attn_output.bias", {d}, DType::F32, rng, 0.05f);
        add_random(m, p + "ffn_norm.weight", {d}, DType::F32, rng, 0.1f, 1.f);
        add_random(m, p + "ffn_norm.bias", {d}, DType::F32, rng, 0.05f);
        add_random(m, p + "ffn_up.weight", {d, s.n_ff}, wtype, rng, 0.2f);
        add_random(m, p + "ffn_up.bias", {s.n_ff}, DType::F32, rng, 0.05f);
        add_random(m, p + "ffn_down.weight", {s.n_ff, d}, wtype, rng, 0.1f);
        add_random(m, p + "ffn_down.bias", {d}, DType::F32, rng, 0.05f);
    }
    add_random(m, "output_norm.weight", {d}, DType::F32, rng, 0.1f, 1.f);
    add_random(m, "output_norm.bias", {d}, DType::F32, rng, 0.05f);
    if (with_output) add_random(m, "output.weight", {d, s.n_vocab}, wtype, rng, 0.3f);
}

// n token ids drawn uniformly from [0, vocab) by a generator seeded with `seed`.
inline std::vector<int32_t> random_ids(int64_t n, int64_t vocab, uint32_t seed) {
    std::mt19937 rng(seed);
    std::uniform_int_distribution<int32_t> u(0, int32_t(vocab - 1));
    std::vector<int32_t> ids(static_cast<size_t>(n));
    for (auto& x : ids) x = u(rng);
    return ids;
}

inline void write_tiny_gpt2(const std::string& path, DType wtype = DType::F32, uint32_t seed = 1,
                            const TinyShape& s = TinyShape{}) {
    TinyModelData m;
    build_tiny_gpt2(m, s, wtype, seed);
    m.writer.write(path);
}

// write_tiny_gpt2 and the model loaded from the file (a TempPath's, usually).
inline std::unique_ptr<Model> load_tiny_gpt2(const std::string& path, DType wtype = DType::F32, uint32_t seed = 1,
                                             const TinyShape& s = TinyShape{}) {
    write_tiny_gpt2(path, wtype, seed, s);
    return Model::load(path);
}

}  // namespace minigpt::test
