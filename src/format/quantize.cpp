#include "format/quantize.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <stdexcept>

#include "format/f16.h"
#include "format/gguf.h"
#include "format/gguf_writer.h"
#include "format/tensor.h"
#include "util/thread_pool.h"
#include "util/strings.h"

namespace minigpt {

void quantize_row_q8_0(const float* x, BlockQ8_0* y, int64_t n, Q8Rounding rounding) {
    if (n % kQ8_0Block != 0)
        throw std::runtime_error("q8_0: row of " + std::to_string(n) + " values is not a multiple of 32");
    for (int64_t b = 0; b < n / kQ8_0Block; ++b) {
        const float* xb = x + b * kQ8_0Block;
        float amax = 0.0f;
        for (int64_t j = 0; j < kQ8_0Block; ++j) amax = std::max(amax, std::fabs(xb[j]));
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[b].scale = f32_to_f16(d);
        // roundf: halves away from zero, as ggml (not nearbyint's ties-to-even).
        if (rounding == Q8Rounding::kDivide)
            for (int64_t j = 0; j < kQ8_0Block; ++j) y[b].q[j] = d != 0.0f ? int8_t(std::roundf(xb[j] / d)) : 0;
        else
            for (int64_t j = 0; j < kQ8_0Block; ++j) y[b].q[j] = int8_t(std::roundf(xb[j] * id));
    }
}

void dequantize_row_q8_0(const BlockQ8_0* x, float* y, int64_t n) {
    for (int64_t b = 0; b < n / kQ8_0Block; ++b) {
        const float d = f16_to_f32(x[b].scale);
        for (int64_t j = 0; j < kQ8_0Block; ++j) y[b * kQ8_0Block + j] = d * float(x[b].q[j]);
    }
}

// Eight at a time where F16C is there, with the same rounding as one at a time (llm.c
// bf16 -> f16: 0.11 -> 0.06 s of CPU, 0.17 -> 0.14 s whole).
void convert_row_f32_to_f16(const float* x, uint16_t* y, int64_t n) {
    int64_t i = 0;
#if defined(__F16C__)
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128(reinterpret_cast<__m128i*>(y + i), _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
#endif
    for (; i < n; ++i) y[i] = f32_to_f16(x[i]);
}

void convert_row_f16_to_f32(const uint16_t* x, float* y, int64_t n) {
    int64_t i = 0;
#if defined(__F16C__)
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x + i))));
#endif
    for (; i < n; ++i) y[i] = f16_to_f32(x[i]);
}

void store_row(const float* x, int64_t n, DType type, uint8_t* out, Q8Rounding rounding) {
    switch (type) {
        case DType::F32: std::memcpy(out, x, size_t(n) * sizeof(float)); break;
        case DType::F16: convert_row_f32_to_f16(x, reinterpret_cast<uint16_t*>(out), n); break;
        case DType::Q8_0: quantize_row_q8_0(x, reinterpret_cast<BlockQ8_0*>(out), n, rounding); break;
        default: throw std::runtime_error(std::string("cannot write rows of type ") + dtype_name(type));
    }
}

uint32_t llama_ftype_of(DType target) {
    switch (target) {
        case DType::F32: return 0;   // LLAMA_FTYPE_ALL_F32
        case DType::F16: return 1;   // LLAMA_FTYPE_MOSTLY_F16
        case DType::Q8_0: return 7;  // LLAMA_FTYPE_MOSTLY_Q8_0
        case DType::BF16: return 32; // LLAMA_FTYPE_MOSTLY_BF16
    }
    return 0;
}

DType parse_quant_type(const std::string& name) {
    if (name == "f32" || name == "F32") return DType::F32;
    if (name == "f16" || name == "F16") return DType::F16;
    if (name == "q8_0" || name == "Q8_0") return DType::Q8_0;
    throw std::runtime_error("unknown type \"" + name + "\": expected f32, f16 or q8_0");
}

namespace {
// N for "blk.N.*", -1 for tensors outside the blocks.
int block_index(const std::string& name) {
    int layer = -1;
    if (std::sscanf(name.c_str(), "blk.%d.", &layer) != 1) return -1;
    return layer;
}
}  // namespace

bool tensor_allows_quantization(const std::string& name, int n_dims) {
    if (n_dims < 2) return false;                                 // norms and biases
    if (!ends_with(name, "weight")) return false;
    if (name.find("_norm.weight") != std::string::npos) return false;
    if (name == "position_embd.weight") return false;              // llama.cpp: LLM_TENSOR_POS_EMBD
    return true;
}

DType quantized_tensor_type(const std::string& name, int n_dims, int64_t row_len, DType current, DType target) {
    if (!tensor_allows_quantization(name, n_dims)) return current;
    if (target == DType::Q8_0 && row_len % kQ8_0Block != 0) return DType::F16;
    return target;
}

namespace {

// Converts `rows` rows of `cols` values from `from` to `to`, rows split over the pool.
void convert_tensor(const uint8_t* src, DType from, uint8_t* dst, DType to, int64_t rows, int64_t cols,
                    ThreadPool& pool) {
    const int64_t dst_row = dtype_row_bytes(to, cols);
    pool.parallel_for(rows, 1, [&](int64_t r0, int64_t r1) {
        std::vector<float> buf(static_cast<size_t>(cols));
        const Matrix m{from, rows, cols, src};
        for (int64_t r = r0; r < r1; ++r) {
            matrix_row(buf.data(), m, r);  // any supported type -> f32
            store_row(buf.data(), cols, to, dst + r * dst_row);
        }
    });
}

}  // namespace

QuantizeSummary quantize_file(const std::string& in_path, const std::string& out_path, const QuantizeOptions& opt) {
    if (opt.target != DType::F32 && opt.target != DType::F16 && opt.target != DType::Q8_0)
        throw std::runtime_error(std::string("quantize: unsupported target type ") + dtype_name(opt.target));
    GGUFFile in(in_path);
    GGUFWriter w;
    QuantizeSummary sum;
    sum.file_type = llama_ftype_of(opt.target);

    // Metadata: everything copied in order, then the two keys llama-quantize sets
    // (gguf_set_val moves an existing key to the end, so they come last there too).
    for (const auto& [key, value] : in.metadata()) {
        if (key == "general.alignment") continue;  // written by write() from the alignment argument
        if (key == "general.quantization_version" || key == "general.file_type") continue;
        w.set_value(key, value);
    }
    w.set_u32("general.quantization_version", 2);  // GGML_QNT_VERSION
    w.set_u32("general.file_type", sum.file_type);

    ThreadPool pool(std::max(1, opt.n_threads));
    std::vector<std::unique_ptr<uint8_t[]>> buffers;  // converted data, alive until write()
    // Tensors in llama-quantize's order (its loader's weight_name_comparer: tensors
    // outside blocks first, then by block number, then by name), so that the same
    // input gives the same bytes from both tools.
    std::vector<const GGUFTensor*> order;
    for (const GGUFTensor& t : in.tensors()) order.push_back(&t);
    std::stable_sort(order.begin(), order.end(), [](const GGUFTensor* a, const GGUFTensor* b) {
        const int la = block_index(a->name), lb = block_index(b->name);
        return la != lb ? la < lb : a->name < b->name;
    });
    const size_t count = order.size();
    for (size_t i = 0; i < count; ++i) {
        const GGUFTensor& t = *order[i];
        QuantizeTensorInfo info;
        info.name = t.name;
        info.ne.assign(t.ne, t.ne + t.n_dims);
        info.from = t.type;
        info.to = quantized_tensor_type(t.name, t.n_dims, t.ne[0], t.type, opt.target);
        info.fell_back = opt.target == DType::Q8_0 && info.to == DType::F16 && tensor_allows_quantization(t.name, t.n_dims);
        info.bytes_in = t.nbytes;
        const int64_t rows = t.elements() / t.ne[0];
        if (info.to == t.type) {
            w.add_tensor(t.name, t.type, info.ne, t.data);  // unchanged: the mapped bytes themselves
            info.bytes_out = t.nbytes;
        } else {
            info.bytes_out = uint64_t(dtype_row_bytes(info.to, t.ne[0])) * uint64_t(rows);
            buffers.emplace_back(new uint8_t[info.bytes_out]);
            try {
                convert_tensor(t.data, t.type, buffers.back().get(), info.to, rows, t.ne[0], pool);
            } catch (const std::exception& e) {
                throw std::runtime_error(in_path + ": tensor \"" + t.name + "\": " + e.what());
            }
            w.add_tensor(t.name, info.to, info.ne, buffers.back().get());
        }
        sum.bytes_in += info.bytes_in;
        sum.bytes_out += info.bytes_out;
        sum.tensors.push_back(info);
        if (opt.on_tensor) opt.on_tensor(i, count, info);
    }
    w.write(out_path, in.alignment());
    return sum;
}

}  // namespace minigpt
