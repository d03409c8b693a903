// Weight conversion between f32, f16 and q8_0, and whole-file quantization
// (`minigpt quantize`), following ggml and llama.cpp so that files move freely
// between the two runtimes:
//   - q8_0 rows are made exactly as ggml's quantize_row_q8_0_ref makes them
//     (ggml-quants.c): per block of 32, d = amax / 127 stored as f16 (round to
//     nearest even), q[j] = roundf(x[j] * (1/d)) with the unrounded d, halves
//     away from zero; an all-zero block gets d = 0 and q = 0.
//   - which tensors are converted follows llama.cpp's llama-quant.cpp
//     (tensor_allows_quantization): only tensors of 2 or more dimensions whose
//     name ends in "weight", never a "*_norm.weight" nor position_embd.weight;
//     those keep the type they had (norms, biases and position embeddings stay f32).
//     token_embd.weight and output.weight get the target type like every matrix
//     (llama.cpp keeps q8_0 for them in a q8_0 file).
//   - tensors are written in llama-quantize's order and general.quantization_version
//     and general.file_type come last, as llama-quantize writes them: from the same
//     input file, both tools write the same bytes.
//   - general.file_type is set to llama.cpp's LLAMA_FTYPE number (0 all f32,
//     1 mostly f16, 7 mostly q8_0) and general.quantization_version to 2, all
//     other metadata copied unchanged.
// One deliberate difference: where a row length is not a multiple of 32,
// llama-quantize refuses q8_0; we fall back to f16 for that tensor and say so.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "format/dtype.h"

namespace minigpt {

// ggml's quantize_row_q8_0_ref: n floats (a multiple of 32) -> n/32 blocks.
// The two llama.cpp tools round x / d differently, and a file is byte-identical to
// one of them only with its rule: llama-quantize multiplies by 1/d (kInverse, the
// default); convert_hf_to_gguf.py's gguf-py divides by d (kDivide, which
// scripts/gguf.py and `minigpt convert` follow). A value may land 1 apart.
enum class Q8Rounding { kInverse, kDivide };
void quantize_row_q8_0(const float* x, BlockQ8_0* y, int64_t n, Q8Rounding rounding = Q8Rounding::kInverse);
// ggml's dequantize_row_q8_0: x[j] = d * q[j].
void dequantize_row_q8_0(const BlockQ8_0* x, float* y, int64_t n);
// f32 <-> f16, round to nearest even (ggml's GGML_FP32_TO_FP16).
void convert_row_f32_to_f16(const float* x, uint16_t* y, int64_t n);
void convert_row_f16_to_f32(const uint16_t* x, float* y, int64_t n);
// n f32 values written as `type` (f32, f16 or q8_0; n a multiple of 32 for q8_0) at
// `out`; throws for other types.
void store_row(const float* x, int64_t n, DType type, uint8_t* out, Q8Rounding rounding = Q8Rounding::kInverse);

// llama.cpp's LLAMA_FTYPE numbers for the types we write.
uint32_t llama_ftype_of(DType target);
// "f32" / "f16" / "q8_0" -> DType; throws on anything else.
DType parse_quant_type(const std::string& name);

// True where llama.cpp's quantizer would convert this tensor (see above).
bool tensor_allows_quantization(const std::string& name, int n_dims);
// The type the tensor gets in a file of `target` type; `row_len` is ne[0].
DType quantized_tensor_type(const std::string& name, int n_dims, int64_t row_len, DType current, DType target);

struct QuantizeTensorInfo {
    std::string name;
    std::vector<int64_t> ne;
    DType from, to;
    uint64_t bytes_in, bytes_out;
    bool fell_back = false;  // q8_0 asked for, f16 written (row length not a multiple of 32)
};

struct QuantizeOptions {
    DType target = DType::Q8_0;
    int n_threads = 1;
    // Called after each tensor is converted (index from 0, count, what was done).
    std::function<void(size_t index, size_t count, const QuantizeTensorInfo&)> on_tensor;
};

struct QuantizeSummary {
    std::vector<QuantizeTensorInfo> tensors;
    uint64_t bytes_in = 0, bytes_out = 0;  // tensor data only
    uint32_t file_type = 0;
};

// Reads a GGUF, converts its tensors and writes `out_path` (temporary file +
// rename: a failure leaves nothing behind). Throws naming the file and tensor.
QuantizeSummary quantize_file(const std::string& in_path, const std::string& out_path, const QuantizeOptions& opt);

}  // namespace minigpt
