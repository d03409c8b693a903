#include "runtime/random_model.h"

#include <cmath>
#include <vector>

#include "format/f16.h"
#include "format/gguf_writer.h"

namespace minigpt {

namespace {

// A small, fast generator (SplitMix64) with an approximately normal sample from
// the sum of uniforms: weights only need to be plausible, not exactly Gaussian.
struct FastRandom {
    uint64_t s;
    uint64_t next() {
        uint64_t z = (s += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        return z ^ (z >> 31);
    }
    float normal() {  // Irwin-Hall with 4 uniforms, scaled to unit variance
        uint64_t r = next();
        float sum = 0;
        for (int i = 0; i < 4; ++i) sum += float((r >> (16 * i)) & 0xffff) / 65536.0f;
        return (sum - 2.0f) * 1.7320508f;
    }
};

struct Builder {
    FastRandom rng;
    std::vector<std::vector<uint8_t>> buffers;
    GGUFWriter writer;

    void add(const std::string& name, std::vector<int64_t> ne, DType type, float scale, float offset = 0.f) {
        int64_t n = 1;
        for (int64_t x : ne) n *= x;
        std::vector<uint8_t> buf;
        if (type == DType::F32) {
            buf.resize(size_t(n) * 4);
            float* p = reinterpret_cast<float*>(buf.data());
            for (int64_t i = 0; i < n; ++i) p[i] = offset + scale * rng.normal();
        } else if (type == DType::F16) {
            buf.resize(size_t(n) * 2);
            uint16_t* p = reinterpret_cast<uint16_t*>(buf.data());
            for (int64_t i = 0; i < n; ++i) p[i] = f32_to_f16(offset + scale * rng.normal());
        } else {  // q8_0: quantize random values as ggml does (d = amax / 127)
            buf.resize(size_t(n / kQ8_0Block) * sizeof(BlockQ8_0));
            BlockQ8_0* b = reinterpret_cast<BlockQ8_0*>(buf.data());
            float v[kQ8_0Block];
            for (int64_t i = 0; i < n / kQ8_0Block; ++i) {
                float amax = 0;
                for (float& x : v) {
                    x = offset + scale * rng.normal();
                    amax = std::fmax(amax, std::fabs(x));
                }
                const float d = amax / 127.f, id = d ? 1.f / d : 0.f;
                b[i].scale = f32_to_f16(d);
                for (int j = 0; j < kQ8_0Block; ++j) b[i].q[j] = int8_t(std::lround(v[j] * id));
            }
        }
        buffers.push_back(std::move(buf));
        writer.add_tensor(name, type, ne, buffers.back().data());
    }
};

}  // namespace

void write_random_gpt2(const std::string& path, const ModelShape& s, DType wtype, uint64_t seed, bool with_output) {
    Builder b{FastRandom{seed}, {}, {}};
    GGUFWriter& w = b.writer;
    w.set_string("general.architecture", "gpt2");
    w.set_string("general.name", "random-gpt2");
    w.set_u32("general.file_type", wtype == DType::F32 ? 0 : wtype == DType::F16 ? 1 : 7);
    w.set_u32("gpt2.context_length", uint32_t(s.n_ctx));
    w.set_u32("gpt2.embedding_length", uint32_t(s.n_embd));
    w.set_u32("gpt2.feed_forward_length", uint32_t(s.n_ff));
    w.set_u32("gpt2.block_count", uint32_t(s.n_layer));
    w.set_u32("gpt2.attention.head_count", uint32_t(s.n_head));
    const int64_t n_kv = s.n_head_kv > 0 ? s.n_head_kv : s.n_head;
    if (s.n_head_kv > 0) w.set_u32("gpt2.attention.head_count_kv", uint32_t(n_kv));
    w.set_f32("gpt2.attention.layer_norm_epsilon", 1e-5f);
    const int64_t d = s.n_embd, n_qkv = d + 2 * (d / s.n_head) * n_kv;
    b.add("token_embd.weight", {d, s.n_vocab}, wtype, 0.3f);
    b.add("position_embd.weight", {d, s.n_ctx}, DType::F32, 0.1f);
    for (int64_t l = 0; l < s.n_layer; ++l) {
        const std::string p = "blk." + std::to_string(l) + ".";
        b.add(p + "attn_norm.weight", {d}, DType::F32, 0.1f, 1.f);
        b.add(p + "attn_norm.bias", {d}, DType::F32, 0.05f);
        b.add(p + "attn_qkv.weight", {d, n_qkv}, wtype, 0.2f);
        b.add(p + "attn_qkv.bias", {n_qkv}, DType::F32, 0.05f);
        b.add(p + "attn_output.weight", {d, d}, wtype, 0.2f);
        b.add(p + "attn_output.bias", {d}, DType::F32, 0.05f);
        b.add(p + "ffn_norm.weight", {d}, DType::F32, 0.1f, 1.f);
        b.add(p + "ffn_norm.bias", {d}, DType::F32, 0.05f);
        b.add(p + "ffn_up.weight", {d, s.n_ff}, wtype, 0.2f);
        b.add(p + "ffn_up.bias", {s.n_ff}, DType::F32, 0.05f);
        b.add(p + "ffn_down.weight", {s.n_ff, d}, wtype, 0.1f);
        b.add(p + "ffn_down.bias", {d}, DType::F32, 0.05f);
    }
    b.add("output_norm.weight", {d}, DType::F32, 0.1f, 1.f);
    b.add("output_norm.bias", {d}, DType::F32, 0.05f);
    if (with_output) b.add("output.weight", {d, s.n_vocab}, wtype, 0.3f);
    w.write(path);
}

}  // namespace minigpt
