// Linear layers: out = in · Wᵀ (+ b) for every weight type, split over the
// runtime's thread pool.
//
// One token (decoding) goes to our matrix-vector kernels (kernels.h), the
// rows of W split between the threads. A batch (prefill) is a GEMM in which
// each thread takes a contiguous range of W's rows:
//  - f32 and f16, up to kSmallBatch input rows (a short prompt): the GEMV kernel
//    on blocks of kSmallRowBlock rows, each block against every input row;
//  - f32: our AVX-512 GEMM (kernels.h) where the kernels have one, else
//    single-threaded OpenBLAS sgemm on that range;
//  - f16: rows dequantized kTileRows at a time into the thread's scratch tile,
//    each tile multiplied with sgemm;
//  - q8_0: every input row quantized to q8_0 once (as decoding does), then the
//    integer kernel gemm_q8_0 on blocks of kQ8RowBlock rows against all input
//    rows, so that a prompt gives bit-identical results in one batch and token
//    by token (llama.cpp also quantizes activations in both).
// OpenBLAS is kept at one thread (blas_single_threaded) so that its threads
// never compete with ours: all parallelism comes from one pool.
#pragma once
#include <cstdint>
#include <vector>

#include "kernels/kernels.h"
#include "runtime/model.h"

namespace minigpt {

class ThreadPool;

// Scratch space owned by the caller, so that no call allocates once the first
// batch has sized it.
struct LinearScratch {
    static constexpr int64_t kTileRows = 64;    // f16 rows dequantized per sgemm
    static constexpr int64_t kSmallBatch = 16;    // input rows up to which f32/f16 take the GEMV kernel
    static constexpr int64_t kSmallRowBlock = 16; // rows of W kept in L2 while the inputs pass
    static constexpr int64_t kQ8RowBlock = 16;    // q8_0 rows kept in L1 while a block of inputs passes
    static constexpr int64_t kQ8TokenBlock = 64;  // quantized input rows kept in L2
    std::vector<float> tiles;                   // (threads, kTileRows, cols): dequantized W rows
    // q8_0 input rows (n, cols) quantized, in the kernels' layout.
    std::vector<int8_t> q;
    std::vector<float> d;
    std::vector<int32_t> offset;
    std::vector<QuantizedVector> vectors;
    void reserve(int64_t max_cols) { tiles.assign(size_t(kTileRows * max_cols), 0.f); }
};

// out (n, W.rows) = in (n, W.cols) · Wᵀ + bias (bias may be null; pool may be null).
void linear(float* out, const float* in, int64_t n, const Matrix& w, const Vector* bias, LinearScratch& scratch,
            ThreadPool* pool);

// Sets OpenBLAS to one thread if anything changed it (cheap when it is already 1).
void blas_single_threaded();

}  // namespace minigpt
