// SIMD kernels of the hot loops: matrix-vector products for every weight type
// (decoding), row dequantization (prefill tiles), and the vector pieces of
// attention (dot products, weighted sums, exp). Each kernel has a plain scalar
// twin in kernels.cpp that the tests use as the reference.
//
// The kernels exist once per instruction set, each written out in its own file
// with that file's intrinsics: avx512.cpp (plus avx512_gemm.cpp, the prefill
// GEMM) and avx2.cpp, each compiled for its instructions whatever the build
// flags (#pragma GCC target), and the scalar twins in kernels.cpp. The best
// table the CPU supports is chosen at run time; tests force each in turn.
//
// q8_0 weights: like llama.cpp, the activation vector is quantized to q8_0
// once per matrix-vector product (blocks of 32, d = max|x|/127 stored as f16,
// q = round-to-nearest-even(x/d)) and the dot product is integer (int8 x int8
// -> int32 per block), then scaled by d_w * d_x in float. The batched path
// (linear.h) quantizes its input rows the same way and runs the same kernel,
// so prefill and decoding agree bit for bit.
#pragma once
#include <cstdint>
#include <string>

#include "format/tensor.h"

namespace minigpt {

class ThreadPool;

enum class KernelIsa { Scalar, Avx2, Avx512 };

// A vector quantized to q8_0 blocks, in the layout the dot kernels read:
// n_blocks*32 int8 values, one f32 scale per block (the f16-rounded d), and
// for the VNNI kernel, which multiplies unsigned weights w+128 by x, the
// correction -128 * (sum of each group of 4 values) that its accumulators start from.
struct QuantizedVector {
    int64_t n_blocks = 0;
    int8_t* q = nullptr;
    float* d = nullptr;
    int32_t* offset = nullptr;  // (n_blocks*8) -128 * the sum of each group of 4 values
};

// Scratch floats a KernelTable::gemm call needs (one packed panel of W).
constexpr int64_t kGemmPackFloats = 768 * 32;

// The kernels of one instruction set. Rows are `ld` bytes apart.
struct KernelTable {
    KernelIsa isa;
    const char* name;
    // y[r] = dot(row r of W, x) for r < rows; W has `cols` columns.
    void (*gemv_f32)(float* y, const uint8_t* w, int64_t ld, int64_t rows, const float* x, int64_t cols);
    void (*gemv_f16)(float* y, const uint8_t* w, int64_t ld, int64_t rows, const float* x, int64_t cols);
    // y[t*ldy + r] = dot(row r of W, x[t]) for r < rows, t < n: q8_0 weights times
    // n quantized vectors. Each output is bit-identical whatever n is, so that
    // prefill (n > 1) and decoding (n == 1) agree exactly.
    void (*gemm_q8_0)(float* y, int64_t ldy, const uint8_t* w, int64_t ld, int64_t rows, const QuantizedVector* x,
                      int64_t n);
    // x (n floats, n a multiple of 32) -> q8_0 as described above; out sized for n/32 blocks.
    void (*quantize_q8_0)(const float* x, int64_t n, QuantizedVector& out);
    // out[0..n) = f32 values of an f16 / q8_0 row (n a multiple of 32 for q8_0).
    void (*dequantize_f16)(float* out, const uint8_t* row, int64_t n);
    void (*dequantize_q8_0)(float* out, const uint8_t* row, int64_t n);
    // s[j] = scale * dot(q, k_j), k_j = k + j*hd, for j < T.
    void (*attn_scores)(float* s, const float* q, const float* k, int64_t T, int64_t hd, float scale);
    // z[0..hd) = sum_j p[j] * v_j, v_j = v + j*hd, for j < T; with `accumulate`, added
    // to z, continuing its sums in the same order (the KV cache's chunks of positions
    // give the same z as one contiguous run).
    void (*attn_values)(float* z, const float* p, const float* v, int64_t T, int64_t hd, bool accumulate);
    // x[0..n) = exp(x - max) / sum, masked entries (-inf) become exactly 0.
    void (*softmax)(float* x, int64_t n);
    // x = x * sigmoid(2u), u = sqrt(2/pi) (x + 0.044715 x^3): GPT-2's tanh GELU,
    // 0.5 x (1 + tanh u), written without the cancellation of 1 + tanh u.
    void (*gelu)(float* x, int64_t n);
    // c[i*ldc + j] = sum_k a[i*lda + k] * W_j[k] for i < n, j < rows: a batch
    // times Wᵀ, W's rows `ld` bytes apart in f32 (w_f16 false) or f16; `pack`
    // holds kGemmPackFloats floats. Null where OpenBLAS sgemm is used instead.
    void (*gemm)(float* c, int64_t ldc, const float* a, int64_t lda, int64_t n, const uint8_t* w, int64_t ld, bool w_f16,
                 int64_t rows, int64_t k, float* pack);
    // out[i] = (x[i] - mean) / sqrt(var + eps) * w[i] + b[i] over one row of n,
    // mean and biased variance accumulated in double.
    void (*layer_norm)(float* out, const float* x, int64_t n, const float* w, const float* b, float eps);
    // attn_scores and attn_values for `rows` query rows over the same T keys (q, s, p
    // and z rows ldq, lds, ldp, ldz floats apart): each row's numbers exactly as the
    // single-row kernel gives them, the keys and values read once for several rows.
    void (*attn_scores_rows)(float* s, int64_t lds, const float* q, int64_t ldq, int64_t rows, const float* k, int64_t T,
                             int64_t hd, float scale);
    void (*attn_values_rows)(float* z, int64_t ldz, const float* p, int64_t ldp, int64_t rows, const float* v, int64_t T,
                             int64_t hd, bool accumulate);
    // Decoding reads a range of rows as four parts side by side (four streams); these
    // take `steps` of them: y[r + s*part] = dot(row r + s*part of W, x) for r < steps,
    // s < 4, each row's number as gemv_f32 / gemv_f16 / gemm_q8_0 (n = 1) give it. So
    // threads can take steps of each other's ranges (gemv with a pool, kernels.cpp).
    void (*gemv_f32_parts)(float* y, const uint8_t* w, int64_t ld, int64_t part, int64_t steps, const float* x,
                           int64_t cols);
    void (*gemv_f16_parts)(float* y, const uint8_t* w, int64_t ld, int64_t part, int64_t steps, const float* x,
                           int64_t cols);
    void (*gemv_q8_0_parts)(float* y, const uint8_t* w, int64_t ld, int64_t part, int64_t steps, const QuantizedVector* x);
};

// The parts gemv_*_parts reads side by side.
constexpr int kGemvParts = 4;

// The kernels in use, and by instruction set. In use: the table force_kernel_isa()
// chose, else the one the environment variable MINIGPT_ISA names (avx512, avx2 or
// scalar: e.g. MINIGPT_ISA=avx2 runs and measures the AVX2 kernels on an AVX-512
// machine), else the best this CPU runs. A MINIGPT_ISA this CPU cannot run, or
// that names no instruction set, makes kernels() throw saying so.
const KernelTable& kernels();
const KernelTable& kernels_scalar();
// Null when this build or this CPU cannot run the instruction set.
const KernelTable* kernels_for(KernelIsa isa);
// Makes `isa` the one kernels() returns (tests, bench: between runs, never while
// a kernel runs); throws if it is unavailable.
void force_kernel_isa(KernelIsa isa);
// "avx512" / "avx2" / "scalar" -> the instruction set; anything else throws
// "WHAT=NAME: unknown instruction set (avx512, avx2 or scalar)".
KernelIsa parse_kernel_isa(const std::string& name, const std::string& what);

// Name of the instruction set in use ("avx512", "avx2", "scalar").
const char* kernel_isa();

// y[r] = dot(row r of W, x) for r in [row_begin, row_end); x has W.cols
// elements. For q8_0 weights x is quantized first (see above).
void gemv_rows(float* y, const Matrix& w, const float* x, int64_t row_begin, int64_t row_end);
// Same, in plain scalar code (the tests' reference, the same math).
void gemv_rows_scalar(float* y, const Matrix& w, const float* x, int64_t row_begin, int64_t row_end);
// Same, with the kernels of `kt` (any instruction set's, as the bench's probe reads with each).
void gemv_rows_with(const KernelTable& kt, float* y, const Matrix& w, const float* x, int64_t row_begin,
                    int64_t row_end);

// y (W.rows) = W · x (+ bias when not null), rows split over the pool's threads
// (pool may be null).
void gemv(float* y, const Matrix& w, const float* x, const float* bias, ThreadPool* pool);

// GELU (kernels().gelu) over x[0..n), split over the pool (may be null).
void gelu_parallel(float* x, int64_t n, ThreadPool* pool);
// LayerNorm (kernels().layer_norm) of `rows` rows of `dim`, rows split over the pool.
void layer_norm_parallel(float* out, const float* x, int64_t rows, int64_t dim, const float* w, const float* b, float eps,
                         ThreadPool* pool);

// out[0..cols) = row r of W as f32 (any weight type).
void dequantize_row(float* out, const Matrix& w, int64_t r);

}  // namespace minigpt
