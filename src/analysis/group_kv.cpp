#include "analysis/group_kv.h"

#include <cstring>
#include <memory>
#include <stdexcept>
#include <vector>

#include "format/gguf.h"
#include "format/gguf_writer.h"
#include "format/quantize.h"
#include "format/tensor.h"

namespace minigpt {

namespace {

// The fused QKV rows (weight: rows of n_embd values; bias: rows of 1 value) with
// each group of `r` consecutive key/value heads pooled into one:
//   rows [0, d)                     q, copied
//   rows d + g hd + i   (g < G)     mean over g0 in [g r, (g+1) r) of k rows d + g0 hd + i
//   rows d + G hd + g hd + i        the same for v (which starts at d + G0 hd in the input)
std::vector<uint8_t> pool_qkv(const Matrix& m, int64_t d, int64_t hd, int64_t g_in, int64_t g_out) {
    const int64_t r = g_in / g_out, row_bytes = m.row_bytes();
    std::vector<uint8_t> out(size_t((d + 2 * g_out * hd) * row_bytes));
    std::memcpy(out.data(), m.row(0), size_t(d * row_bytes));  // q rows unchanged
    std::vector<float> row(size_t(m.cols));
    std::vector<double> sum(size_t(m.cols));
    for (int part = 0; part < 2; ++part) {  // 0 = k, 1 = v
        const int64_t in0 = d + part * g_in * hd, out0 = d + part * g_out * hd;
        for (int64_t g = 0; g < g_out; ++g)
            for (int64_t i = 0; i < hd; ++i) {
                std::fill(sum.begin(), sum.end(), 0.0);
                for (int64_t g0 = g * r; g0 < (g + 1) * r; ++g0) {
                    matrix_row(row.data(), m, in0 + g0 * hd + i);
                    for (int64_t c = 0; c < m.cols; ++c) sum[size_t(c)] += row[size_t(c)];
                }
                for (int64_t c = 0; c < m.cols; ++c) row[size_t(c)] = float(sum[size_t(c)] / double(r));
                store_row(row.data(), m.cols, m.type, out.data() + (out0 + g * hd + i) * row_bytes);
            }
    }
    return out;
}

}  // namespace

GroupKvSummary group_kv_file(const std::string& in_path, const std::string& out_path, int64_t kv_heads) {
    GGUFFile in(in_path);
    if (in.get_string("general.architecture") != "gpt2")
        throw std::runtime_error(in_path + ": group-kv works on gpt2 models, this one is \"" +
                                 in.get_string("general.architecture") + "\"");
    GroupKvSummary s;
    s.n_head = int64_t(in.get_uint("gpt2.attention.head_count"));
    s.kv_heads_in = int64_t(in.get_uint("gpt2.attention.head_count_kv", uint64_t(s.n_head)));
    s.n_layer = int64_t(in.get_uint("gpt2.block_count"));
    const int64_t d = int64_t(in.get_uint("gpt2.embedding_length"));
    if (s.n_head < 1 || d % s.n_head != 0 || s.kv_heads_in < 1 || s.n_head % s.kv_heads_in != 0)
        throw std::runtime_error(in_path + ": inconsistent head counts (embedding_length " + std::to_string(d) +
                                 ", head_count " + std::to_string(s.n_head) + ", head_count_kv " +
                                 std::to_string(s.kv_heads_in) + ")");
    if (kv_heads < 1 || s.kv_heads_in % kv_heads != 0)
        throw std::runtime_error("--kv-heads " + std::to_string(kv_heads) + " must divide the " +
                                 std::to_string(s.kv_heads_in) + " key/value heads of " + in_path);
    s.kv_heads_out = kv_heads;
    const int64_t hd = d / s.n_head;
    s.kv_bytes_per_token_in = uint64_t(2 * s.n_layer * s.kv_heads_in * hd * 4);
    s.kv_bytes_per_token_out = uint64_t(2 * s.n_layer * kv_heads * hd * 4);

    GGUFWriter w;
    bool wrote_kv = false;
    for (const auto& [key, value] : in.metadata()) {
        if (key == "general.alignment") continue;  // written by write()
        if (key == "gpt2.attention.head_count_kv") {
            w.set_u32(key, uint32_t(kv_heads));
            wrote_kv = true;
        } else {
            w.set_value(key, value);
        }
        if (key == "gpt2.attention.head_count" && !wrote_kv && kv_heads != s.kv_heads_in) {
            w.set_u32("gpt2.attention.head_count_kv", uint32_t(kv_heads));
            wrote_kv = true;
        }
    }
    std::vector<std::vector<uint8_t>> buffers;  // pooled tensors, alive until write()
    const int64_t n_qkv_in = d + 2 * s.kv_heads_in * hd;
    for (const GGUFTensor& t : in.tensors()) {
        std::vector<int64_t> ne(t.ne, t.ne + t.n_dims);
        const bool is_qkv = t.name.size() > 13 && t.name.compare(0, 4, "blk.") == 0 &&
                            (t.name.find(".attn_qkv.weight") != std::string::npos ||
                             t.name.find(".attn_qkv.bias") != std::string::npos);
        if (!is_qkv || kv_heads == s.kv_heads_in) {
            w.add_tensor(t.name, t.type, ne, t.data);  // unchanged: the mapped bytes themselves
            continue;
        }
        const bool weight = t.name.find(".weight") != std::string::npos;
        const int64_t rows = weight ? t.ne[1] : t.ne[0], cols = weight ? t.ne[0] : 1;
        if (rows != n_qkv_in || (weight && (t.n_dims != 2 || cols != d)) || (!weight && t.n_dims != 1))
            throw std::runtime_error(in_path + ": tensor \"" + t.name + "\" has shape " + t.shape_string() +
                                     ", expected " + std::to_string(n_qkv_in) + " rows of q | k | v");
        if (!weight && t.type != DType::F32)
            throw std::runtime_error(in_path + ": tensor \"" + t.name + "\" must be f32");
        const Matrix m{t.type, rows, cols, t.data};
        buffers.push_back(pool_qkv(m, d, hd, s.kv_heads_in, kv_heads));
        if (weight) ne[1] = d + 2 * kv_heads * hd;
        else ne[0] = d + 2 * kv_heads * hd;
        w.add_tensor(t.name, t.type, ne, buffers.back().data());
    }
    w.write(out_path, in.alignment());
    return s;
}

}  // namespace minigpt
