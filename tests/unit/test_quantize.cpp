// q8_0 against ggml's formula, f16 conversion, and whole-file quantization
// following llama.cpp's tensor rules.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <random>

#include "format/f16.h"
#include "format/gguf.h"
#include "runtime/model.h"
#include "format/quantize.h"
#include "tiny_model.h"
#include "runtime/transformer.h"

using namespace minigpt;

namespace {

// ggml-quants.c quantize_row_q8_0_ref, transcribed as plainly as possible.
void ggml_q8_0_reference(const float* x, BlockQ8_0* y, int64_t k) {
    for (int64_t i = 0; i < k / 32; i++) {
        float amax = 0.0f;
        for (int j = 0; j < 32; j++) amax = std::max(amax, std::fabs(x[i * 32 + j]));
        const float d = amax / ((1 << 7) - 1);
        const float id = d ? 1.0f / d : 0.0f;
        y[i].scale = f32_to_f16(d);
        for (int j = 0; j < 32; ++j) y[i].q[j] = int8_t(std::roundf(x[i * 32 + j] * id));
    }
}

std::vector<float> random_row(std::mt19937& rng, int64_t n, float scale) {
    std::normal_distribution<float> nd(0.f, scale);
    std::vector<float> x(static_cast<size_t>(n));
    for (float& v : x) v = nd(rng);
    return x;
}

}  // namespace

TEST_CASE("q8_0 blocks equal ggml's quantize_row_q8_0_ref byte for byte") {
    std::mt19937 rng(7);
    for (float scale : {1e-4f, 0.02f, 1.0f, 300.0f}) {
        std::vector<float> x = random_row(rng, 32 * 64, scale);
        // Special blocks: all zero, one non-zero value, exact halves, a huge outlier.
        for (int j = 0; j < 32; ++j) x[size_t(j)] = 0.f;
        for (int j = 0; j < 32; ++j) x[size_t(32 + j)] = j == 5 ? -3.f : 0.f;
        for (int j = 0; j < 32; ++j) x[size_t(64 + j)] = float(j) - 15.5f;
        x[100] = 1e4f;
        std::vector<BlockQ8_0> ours(64), ref(64);
        quantize_row_q8_0(x.data(), ours.data(), int64_t(x.size()));
        ggml_q8_0_reference(x.data(), ref.data(), int64_t(x.size()));
        CHECK(std::memcmp(ours.data(), ref.data(), ours.size() * sizeof(BlockQ8_0)) == 0);
    }
}

TEST_CASE("q8_0 known values: d = amax/127, halves round away from zero, zero block") {
    std::vector<float> x(32, 0.f);
    x[0] = 127.f;  // amax 127 -> d = 1
    x[1] = 2.5f;   // roundf -> 3 (nearbyint would give 2)
    x[2] = -2.5f;  // -> -3
    x[3] = -127.f;
    x[4] = 0.49f;
    BlockQ8_0 b;
    quantize_row_q8_0(x.data(), &b, 32);
    CHECK(f16_to_f32(b.scale) == 1.0f);
    CHECK(b.q[0] == 127);
    CHECK(b.q[1] == 3);
    CHECK(b.q[2] == -3);
    CHECK(b.q[3] == -127);
    CHECK(b.q[4] == 0);
    std::vector<float> zeros(32, 0.f);
    quantize_row_q8_0(zeros.data(), &b, 32);
    CHECK(b.scale == 0);
    for (int j = 0; j < 32; ++j) CHECK(b.q[j] == 0);
    CHECK_THROWS_WITH_AS(quantize_row_q8_0(zeros.data(), &b, 31), doctest::Contains("multiple of 32"), std::runtime_error);
}

TEST_CASE("q8_0 dequantization error is within half a step (plus the f16 rounding of d)") {
    std::mt19937 rng(11);
    const std::vector<float> x = random_row(rng, 32 * 256, 0.05f);
    std::vector<BlockQ8_0> q(256);
    std::vector<float> back(x.size());
    quantize_row_q8_0(x.data(), q.data(), int64_t(x.size()));
    dequantize_row_q8_0(q.data(), back.data(), int64_t(x.size()));
    double worst = 0;  // in units of the block's step d
    for (size_t b = 0; b < 256; ++b) {
        float amax = 0;
        for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[b * 32 + size_t(j)]));
        const double d = double(amax) / 127.0;
        for (int j = 0; j < 32; ++j) {
            const size_t i = b * 32 + size_t(j);
            worst = std::max(worst, std::fabs(double(x[i]) - double(back[i])) / d);
        }
    }
    // |x - d16 q| <= d/2 + 127 |d - d16|, and |d - d16| <= d 2^-11 (f16 has 11 significant bits).
    const double bound = 0.5 + 127.0 / 2048.0;
    MESSAGE("worst q8_0 error: " << worst << " steps (bound " << bound << ")");
    CHECK(worst <= bound);
    CHECK(worst > 0.4);  // the bound is not vacuous: rounding errors do reach nearly half a step
}

TEST_CASE("f16: every finite half survives f16 -> f32 -> f16; f32 -> f16 is correctly rounded") {
    int mismatches = 0;
    for (uint32_t h = 0; h < 65536; ++h) {
        if ((h & 0x7c00) == 0x7c00) continue;  // inf / nan
        const uint16_t back = f32_to_f16(f16_to_f32(uint16_t(h)));
        if (back != h) ++mismatches;
    }
    CHECK(mismatches == 0);
    std::mt19937 rng(3);
    const std::vector<float> x = random_row(rng, 4096, 10.f);
    std::vector<uint16_t> h(x.size());
    std::vector<float> y(x.size());
    convert_row_f32_to_f16(x.data(), h.data(), int64_t(x.size()));
    convert_row_f16_to_f32(h.data(), y.data(), int64_t(x.size()));
    double worst = 0;
    for (size_t i = 0; i < x.size(); ++i)
        if (std::fabs(x[i]) > 6.2e-5f) worst = std::max(worst, std::fabs(double(x[i]) - y[i]) / std::fabs(double(x[i])));
    MESSAGE("worst relative f16 error on normals: " << worst);
    CHECK(worst <= std::ldexp(1.0, -11));
}

TEST_CASE("llama.cpp's tensor rules: matrices converted, norms, biases and position_embd kept") {
    CHECK(tensor_allows_quantization("token_embd.weight", 2));
    CHECK(tensor_allows_quantization("output.weight", 2));
    CHECK(tensor_allows_quantization("blk.0.attn_qkv.weight", 2));
    CHECK(tensor_allows_quantization("blk.11.ffn_down.weight", 2));
    CHECK_FALSE(tensor_allows_quantization("position_embd.weight", 2));
    CHECK_FALSE(tensor_allows_quantization("blk.0.attn_norm.weight", 1));
    CHECK_FALSE(tensor_allows_quantization("output_norm.weight", 2));  // by name, even if 2-D
    CHECK_FALSE(tensor_allows_quantization("blk.0.attn_qkv.bias", 1));
    CHECK_FALSE(tensor_allows_quantization("blk.0.attn_qkv.bias", 2));  // does not end in "weight"
    CHECK(quantized_tensor_type("blk.0.ffn_up.weight", 2, 48, DType::F32, DType::Q8_0) == DType::F16);
    CHECK(quantized_tensor_type("blk.0.ffn_up.weight", 2, 64, DType::F32, DType::Q8_0) == DType::Q8_0);
    CHECK(quantized_tensor_type("position_embd.weight", 2, 64, DType::F16, DType::F32) == DType::F16);
    CHECK(llama_ftype_of(DType::F32) == 0);
    CHECK(llama_ftype_of(DType::F16) == 1);
    CHECK(llama_ftype_of(DType::Q8_0) == 7);
    CHECK(parse_quant_type("q8_0") == DType::Q8_0);
    CHECK_THROWS_AS(parse_quant_type("q4_0"), std::runtime_error);
}

TEST_CASE("quantize_file: types, metadata, loadable output, logits close to f32") {
    test::TempPath src("q_src.gguf"), q8("q_q8.gguf"), f16("q_f16.gguf"), q8q8("q_q8q8.gguf");
    {
        test::TinyModelData m;
        test::build_tiny_gpt2(m, test::TinyShape{}, DType::F32, 5);
        m.writer.set_string("tokenizer.ggml.model", "gpt2");
        m.writer.set_u32("general.file_type", 0);
        m.writer.write(src.path);
    }
    QuantizeOptions opt;
    opt.target = DType::Q8_0;
    opt.n_threads = 2;
    size_t calls = 0;
    opt.on_tensor = [&](size_t i, size_t n, const QuantizeTensorInfo&) { CHECK(i == calls++); CHECK(n > 0); };
    const QuantizeSummary s = quantize_file(src.path, q8.path, opt);
    CHECK(calls == s.tensors.size());
    CHECK(s.bytes_out < s.bytes_in);

    GGUFFile in(src.path), out(q8.path);
    CHECK(out.get_uint("general.file_type") == 7);
    CHECK(out.get_uint("general.quantization_version") == 2);
    CHECK(out.get_string("general.name") == in.get_string("general.name"));
    CHECK(out.get_string("tokenizer.ggml.model") == "gpt2");
    REQUIRE(out.tensors().size() == in.tensors().size());
    for (const GGUFTensor& a : in.tensors()) {
        CAPTURE(a.name);
        const GGUFTensor& b = out.tensor(a.name);
        CHECK(a.shape_string() == b.shape_string());
        const bool matrix = a.n_dims == 2 && a.name != "position_embd.weight";
        CHECK(b.type == (matrix ? DType::Q8_0 : DType::F32));
        if (!matrix) CHECK(std::memcmp(a.data, b.data, a.nbytes) == 0);
    }
    // llama-quantize's order: tensors outside the blocks by name, then block by block.
    std::vector<std::string> names;
    for (const GGUFTensor& t : out.tensors()) names.push_back(t.name);
    CHECK(names.front() == "output.weight");
    CHECK(names[4] == "token_embd.weight");
    CHECK(names[5] == "blk.0.attn_norm.bias");
    CHECK(names.back() == "blk.1.ffn_up.weight");
    CHECK(out.metadata().back().first == "general.file_type");

    // Each q8_0 block is what the reference makes of the f32 rows.
    const GGUFTensor& qkv_in = in.tensor("blk.1.attn_qkv.weight");
    const GGUFTensor& qkv_out = out.tensor("blk.1.attn_qkv.weight");
    std::vector<BlockQ8_0> ref(size_t(qkv_in.elements() / 32));
    ggml_q8_0_reference(reinterpret_cast<const float*>(qkv_in.data), ref.data(), qkv_in.elements());
    CHECK(std::memcmp(ref.data(), qkv_out.data, qkv_out.nbytes) == 0);

    // The q8_0 file holds the weights' q8_0 blocks: a model of f32 weights with
    // the dequantized values runs nearly the same numbers (not exactly: the
    // q8_0 kernels may quantize activations to q8_0 too, as llama.cpp does),
    // and both stay near the original. A wrong scale or block order fails by far.
    test::TempPath deq("q_deq.gguf");
    QuantizeOptions back;
    back.target = DType::F32;
    quantize_file(q8.path, deq.path, back);
    const std::vector<int32_t> ids = {1, 5, 9, 33, 60, 2, 17, 80};
    auto last_logits = [&](const std::string& p) {
        auto m = Model::load(p);
        Transformer t(*m, {});
        const float* l = t.forward(ids.data(), int64_t(ids.size()));
        return std::vector<float>(l, l + m->config().n_vocab);
    };
    const std::vector<float> l32 = last_logits(src.path), l8 = last_logits(q8.path), ld = last_logits(deq.path);
    double d_deq = 0, d_orig = 0, amax = 0;
    for (size_t v = 0; v < l32.size(); ++v) {
        d_deq = std::max(d_deq, std::fabs(double(l8[v]) - ld[v]));
        d_orig = std::max(d_orig, std::fabs(double(l8[v]) - l32[v]));
        amax = std::max(amax, std::fabs(double(l32[v])));
    }
    MESSAGE("q8_0 logits vs dequantized-f32 logits: max |diff| " << d_deq << "; vs original f32: " << d_orig
                                                              << " (max |logit| " << amax << ")");
    CHECK(d_deq < 0.05 * amax);
    CHECK(d_orig < 0.1 * amax);

    // q8_0 -> q8_0 copies the blocks unchanged; f16 gets file_type 1.
    opt.on_tensor = nullptr;
    quantize_file(q8.path, q8q8.path, opt);
    GGUFFile again(q8q8.path);
    for (size_t i = 0; i < out.tensors().size(); ++i)
        CHECK(std::memcmp(out.tensors()[i].data, again.tensors()[i].data, out.tensors()[i].nbytes) == 0);
    opt.target = DType::F16;
    quantize_file(src.path, f16.path, opt);
    GGUFFile h(f16.path);
    CHECK(h.get_uint("general.file_type") == 1);
    CHECK(h.tensor("blk.0.ffn_up.weight").type == DType::F16);
    CHECK(h.tensor("blk.0.ffn_up.bias").type == DType::F32);
    CHECK(h.tensor("position_embd.weight").type == DType::F32);
}

TEST_CASE("quantize_file: rows not a multiple of 32 fall back to f16; bad input leaves no output") {
    test::TempPath src("q_odd.gguf"), dst("q_odd_q8.gguf"), bad("q_bad.gguf"), none("q_none.gguf");
    test::TinyShape shape;
    shape.n_embd = 48;  // 48 % 32 != 0: every matrix with 48 columns
    shape.n_ff = 96;
    test::write_tiny_gpt2(src.path, DType::F32, 2, shape);
    QuantizeOptions opt;
    const QuantizeSummary s = quantize_file(src.path, dst.path, opt);
    int fell_back = 0;
    for (const auto& t : s.tensors) fell_back += t.fell_back;
    CHECK(fell_back > 0);
    GGUFFile out(dst.path);
    CHECK(out.tensor("blk.0.attn_qkv.weight").type == DType::F16);   // 48 columns
    CHECK(out.tensor("blk.0.ffn_down.weight").type == DType::Q8_0);  // 96 columns
    CHECK_NOTHROW(Model::load(dst.path));

    {
        FILE* f = std::fopen(bad.path.c_str(), "wb");
        std::fputs("not a gguf", f);
        std::fclose(f);
    }
    CHECK_THROWS_AS(quantize_file(bad.path, none.path, opt), std::runtime_error);
    CHECK(std::fopen(none.path.c_str(), "rb") == nullptr);
}
