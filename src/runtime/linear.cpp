#include "runtime/linear.h"

#include <algorithm>
#include <cstring>
#include <functional>

#include "kernels/blas.h"
#include "kernels/kernels.h"
#include "util/thread_pool.h"

namespace minigpt {

void blas_single_threaded() {
    blas::set_threads(1);
}

namespace {

// out[:, r0:r1) = in · W[r0:r1)ᵀ on the calling thread; `tile` holds kTileRows dequantized rows.
void gemm_rows(float* out, const float* in, int64_t n, const Matrix& w, int64_t r0, int64_t r1, float* tile) {
    const int64_t rows = w.rows, cols = w.cols;
    if (w.type == DType::F32) {
        blas::sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(n), int(r1 - r0), int(cols), 1.0f, in, int(cols),
                    reinterpret_cast<const float*>(w.row(r0)), int(cols), 0.0f, out + r0, int(rows));
        return;
    }
    for (int64_t t0 = r0; t0 < r1; t0 += LinearScratch::kTileRows) {
        const int64_t nr = std::min(LinearScratch::kTileRows, r1 - t0);
        for (int64_t r = 0; r < nr; ++r) dequantize_row(tile + r * cols, w, t0 + r);
        blas::sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(n), int(nr), int(cols), 1.0f, in, int(cols), tile,
                    int(cols), 0.0f, out + t0, int(rows));
    }
}

// Runs fn(r0, r1, thread) over ranges of W's rows aligned to `grain`, a few
// per thread, claimed dynamically (thread indexes per-thread scratch).
void for_row_ranges(ThreadPool* pool, int64_t rows, int64_t grain, const std::function<void(int64_t, int64_t, int)>& fn) {
    const int threads = pool ? pool->size() : 1;
    const int64_t units = (rows + grain - 1) / grain;
    const int64_t tasks = std::min<int64_t>(units, threads == 1 ? 1 : 4 * threads);
    auto task = [&](int64_t t, int thread) {
        int64_t r0, r1;
        ThreadPool::chunk(rows, grain, int(t), int(tasks), &r0, &r1);
        if (r0 < r1) fn(r0, r1, thread);
    };
    if (pool) pool->for_each(tasks, task);
    else
        for (int64_t t = 0; t < tasks; ++t) task(t, 0);
}

void add_bias_columns(float* out, int64_t n, int64_t ld, const float* bias, int64_t r0, int64_t r1) {
    for (int64_t i = 0; i < n; ++i) {
        float* o = out + i * ld;
        for (int64_t r = r0; r < r1; ++r) o[r] += bias[r];
    }
}

// q8_0 batch: quantize the n input rows, then the integer kernel (see linear.h).
void linear_q8_0(float* out, const float* in, int64_t n, const Matrix& w, const Vector* bias, LinearScratch& s,
                 ThreadPool* pool) {
    const int64_t rows = w.rows, cols = w.cols, nb = cols / kQ8_0Block;
    if (s.vectors.size() < size_t(n) || s.q.size() < size_t(n * cols)) {
        s.q.resize(size_t(n * cols));
        s.d.resize(size_t(n * nb));
        s.offset.resize(size_t(n * nb * 8));
        s.vectors.resize(size_t(n));
    }
    const KernelTable& kt = kernels();
    auto quantize = [&](int64_t i0, int64_t i1) {
        for (int64_t i = i0; i < i1; ++i) {
            QuantizedVector& v = s.vectors[size_t(i)];
            v = QuantizedVector{nb, s.q.data() + i * cols, s.d.data() + i * nb, s.offset.data() + i * nb * 8};
            kt.quantize_q8_0(in + i * cols, cols, v);
        }
    };
    if (pool) pool->parallel_for(n, 1, quantize);
    else quantize(0, n);
    // Blocks of kQ8TokenBlock input rows (kept in L2) by kQ8RowBlock rows of W
    // (kept in L1) within each range of rows.
    for_row_ranges(pool, rows, LinearScratch::kQ8RowBlock, [&](int64_t r0, int64_t r1, int) {
        for (int64_t t0 = 0; t0 < n; t0 += LinearScratch::kQ8TokenBlock) {
            const int64_t nt = std::min(LinearScratch::kQ8TokenBlock, n - t0);
            for (int64_t b0 = r0; b0 < r1; b0 += LinearScratch::kQ8RowBlock) {
                const int64_t nr = std::min(LinearScratch::kQ8RowBlock, r1 - b0);
                kt.gemm_q8_0(out + t0 * rows + b0, rows, w.row(b0), w.row_bytes(), nr, s.vectors.data() + t0, nt);
            }
        }
        if (bias) add_bias_columns(out, n, rows, bias->data, r0, r1);
    });
}

}  // namespace

void linear(float* out, const float* in, int64_t n, const Matrix& w, const Vector* bias, LinearScratch& scratch,
            ThreadPool* pool) {
    const int64_t rows = w.rows, cols = w.cols;
    if (n == 1) {
        gemv(out, w, in, bias ? bias->data : nullptr, pool);
        return;
    }
    blas_single_threaded();
    const int threads = pool ? pool->size() : 1;
    if (w.type == DType::Q8_0) {
        linear_q8_0(out, in, n, w, bias, scratch, pool);
        return;
    }
    const KernelTable& kt = kernels();
    if (n <= LinearScratch::kSmallBatch && (w.type == DType::F32 || w.type == DType::F16)) {
        // A short prompt: the GEMV kernel over blocks of kSmallRowBlock rows of W, each block
        // read from memory once and from cache for the other inputs. No packing or
        // dequantized tiles, which for a few inputs cost more than the products.
        const auto gemv_block = w.type == DType::F32 ? kt.gemv_f32 : kt.gemv_f16;
        for_row_ranges(pool, rows, LinearScratch::kSmallRowBlock, [&](int64_t r0, int64_t r1, int) {
            for (int64_t b0 = r0; b0 < r1; b0 += LinearScratch::kSmallRowBlock) {
                const int64_t nr = std::min(LinearScratch::kSmallRowBlock, r1 - b0);
                for (int64_t i = 0; i < n; ++i) gemv_block(out + i * rows + b0, w.row(b0), w.row_bytes(), nr, in + i * cols, cols);
            }
            if (bias) add_bias_columns(out, n, rows, bias->data, r0, r1);
        });
        return;
    }
    const bool own_gemm = kt.gemm && (w.type == DType::F32 || w.type == DType::F16);
    const size_t tile_size = size_t(std::max(LinearScratch::kTileRows * cols, kGemmPackFloats));
    if ((own_gemm || w.type != DType::F32) && scratch.tiles.size() < tile_size * size_t(threads))
        scratch.tiles.resize(tile_size * size_t(threads));
    if (own_gemm) {
        // Our AVX-512 GEMM (kernels/avx512_gemm.cpp), W's rows in ranges of whole 32-row panels.
        for_row_ranges(pool, rows, 32, [&](int64_t r0, int64_t r1, int thread) {
            kt.gemm(out + r0, rows, in, cols, n, w.row(r0), w.row_bytes(), w.type == DType::F16, r1 - r0, cols,
                    scratch.tiles.data() + tile_size * size_t(thread));
            if (bias) add_bias_columns(out, n, rows, bias->data, r0, r1);
        });
        return;
    }
    // OpenBLAS sgemm on ranges of W's rows (whole tiles), then their bias columns.
    for_row_ranges(pool, rows, w.type == DType::F32 ? 16 : LinearScratch::kTileRows, [&](int64_t r0, int64_t r1, int thread) {
        gemm_rows(out, in, n, w, r0, r1, w.type == DType::F32 ? nullptr : scratch.tiles.data() + tile_size * size_t(thread));
        if (bias) add_bias_columns(out, n, rows, bias->data, r0, r1);
    });
}

}  // namespace minigpt
