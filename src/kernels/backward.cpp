#include "kernels/backward.h"

#include <algorithm>
#include <cmath>
#include <functional>

#include "kernels/blas.h"
#include "kernels/kernels.h"
#include "util/thread_pool.h"

namespace minigpt {

void layernorm_backward(float* dx, const float* dy, const float* x, int64_t rows, int64_t dim, const float* w,
                        float eps) {
    for (int64_t r = 0; r < rows; ++r) {
        const float* xr = x + r * dim;
        const float* dyr = dy + r * dim;
        float* dxr = dx + r * dim;
        // The forward's statistics: two passes in double (ops.h layer_norm).
        double sum = 0;
        for (int64_t i = 0; i < dim; ++i) sum += xr[i];
        const double mean = sum / double(dim);
        double var = 0;
        for (int64_t i = 0; i < dim; ++i) var += (xr[i] - mean) * (xr[i] - mean);
        const double rstd = 1.0 / std::sqrt(var / double(dim) + double(eps));
        double g_sum = 0, gx_sum = 0;
        for (int64_t i = 0; i < dim; ++i) {
            const double g = double(dyr[i]) * double(w[i]);
            g_sum += g;
            gx_sum += g * (xr[i] - mean) * rstd;
        }
        const double g_mean = g_sum / double(dim), gx_mean = gx_sum / double(dim);
        for (int64_t i = 0; i < dim; ++i) {
            const double xhat = (xr[i] - mean) * rstd;
            const double g = double(dyr[i]) * double(w[i]);
            dxr[i] += float(rstd * (g - g_mean - xhat * gx_mean));
        }
    }
}

void gelu_backward(float* dx, const float* x, const float* dy, int64_t n) {
    const double k = 0.7978845608028654;  // sqrt(2/pi)
    for (int64_t i = 0; i < n; ++i) {
        const double v = x[i];
        const double t = std::tanh(k * (v + 0.044715 * v * v * v));
        const double grad = 0.5 * (1.0 + t) + 0.5 * v * (1.0 - t * t) * k * (1.0 + 3.0 * 0.044715 * v * v);
        dx[i] = float(double(dy[i]) * grad);
    }
}

void softmax_backward(float* ds, const float* p, const float* dp, int64_t n) {
    double dot = 0;
    for (int64_t i = 0; i < n; ++i) dot += double(p[i]) * double(dp[i]);
    for (int64_t i = 0; i < n; ++i) ds[i] = float(double(p[i]) * (double(dp[i]) - dot));
}

namespace {

// Row i of the causal pattern from its scores s[0..i]: max-subtracted softmax, zeros after i.
void causal_softmax_row(float* s, int64_t i, int64_t T) {
    float mx = s[0];
    for (int64_t j = 1; j <= i; ++j) mx = std::max(mx, s[j]);
    double sum = 0;
    for (int64_t j = 0; j <= i; ++j) {
        s[j] = std::exp(s[j] - mx);
        sum += s[j];
    }
    const float inv = float(1.0 / sum);
    for (int64_t j = 0; j <= i; ++j) s[j] *= inv;
    std::fill(s + i + 1, s + T, 0.f);
}

}  // namespace

void attention_backward(float* dq, float* dk, float* dv, int64_t ld_d, const float* dz, int64_t ld_z, const float* q,
                        const float* k, const float* v, int64_t ld_qkv, int64_t T, int64_t hd, float scale,
                        float* scratch) {
    float* p = scratch;           // (T, T) pattern, recomputed
    float* dp = scratch + T * T;  // (T, T) its gradient, then the scores' gradient
    const int t = int(T), h = int(hd), lq = int(ld_qkv), ldd = int(ld_d), lz = int(ld_z);
    // Whole (T, T) products: the upper triangle is wasted work, but p = 0 there
    // makes every term that reads it vanish, so no mask is needed after the softmax.
    blas::sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, t, t, h, scale, q, lq, k, lq, 0.f, p, t);
    for (int64_t i = 0; i < T; ++i) causal_softmax_row(p + i * T, i, T);
    blas::sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, t, t, h, 1.f, dz, lz, v, lq, 0.f, dp, t);    // dp = dz vᵀ
    blas::sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, t, h, t, 1.f, p, t, dz, lz, 1.f, dv, ldd);   // dv += pᵀ dz
    for (int64_t i = 0; i < T; ++i) {
        softmax_backward(dp + i * T, p + i * T, dp + i * T, i + 1);
        std::fill(dp + i * T + i + 1, dp + (i + 1) * T, 0.f);
    }
    blas::sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, t, h, t, scale, dp, t, k, lq, 1.f, dq, ldd);  // dq += ds k
    blas::sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, t, h, t, scale, dp, t, q, lq, 1.f, dk, ldd);    // dk += dsᵀ q
}

void matmul_backward(float* din, const float* dout, int64_t n, const Matrix& w, MatmulBackwardScratch& scratch,
                     ThreadPool* pool) {
    const int64_t rows = w.rows, cols = w.cols;
    // Our pool gives the parallelism; OpenBLAS's own threads would compete with it.
    blas::set_threads(1);
    // din[:, c0:c1) += dout[:, r0:r0+nr) · W[r0:r0+nr, c0:c1), W's rows `wr` (f32, cols apart).
    auto product = [&](int64_t c0, int64_t c1, int64_t r0, int64_t nr, const float* wr) {
        blas::sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(n), int(c1 - c0), int(nr), 1.f, dout + r0, int(rows),
                    wr + c0, int(cols), 1.f, din + c0, int(cols));
    };
    // The columns of din split between the threads: each reads its own columns of
    // W once (a split over the rows of dout would read all of W once per thread).
    auto over_columns = [&](const std::function<void(int64_t, int64_t)>& fn) {
        const int tasks = pool ? pool->size() : 1;
        if (tasks == 1) return fn(0, cols);
        pool->for_each(tasks, [&](int64_t t, int) {
            int64_t c0, c1;
            ThreadPool::chunk(cols, 16, int(t), tasks, &c0, &c1);
            if (c0 < c1) fn(c0, c1);
        });
    };
    if (w.type == DType::F32) {
        over_columns([&](int64_t c0, int64_t c1) { product(c0, c1, 0, rows, reinterpret_cast<const float*>(w.data)); });
        return;
    }
    const int64_t tile_rows = MatmulBackwardScratch::kTileRows;
    if (scratch.tile.size() < size_t(tile_rows * cols)) scratch.tile.resize(size_t(tile_rows * cols));
    float* tile = scratch.tile.data();
    for (int64_t r0 = 0; r0 < rows; r0 += tile_rows) {
        const int64_t nr = std::min(tile_rows, rows - r0);
        auto dequantize = [&](int64_t a, int64_t b) {
            for (int64_t r = a; r < b; ++r) dequantize_row(tile + r * cols, w, r0 + r);
        };
        if (pool) pool->parallel_for(nr, 8, dequantize);
        else dequantize(0, nr);
        over_columns([&](int64_t c0, int64_t c1) { product(c0, c1, r0, nr, tile); });
    }
}

double crossentropy_softmax_backward(float* logits, int64_t V, int32_t target, float scale) {
    float mx = logits[0];
    for (int64_t i = 1; i < V; ++i) mx = std::max(mx, logits[i]);
    double sum = 0;
    for (int64_t i = 0; i < V; ++i) sum += std::exp(double(logits[i]) - double(mx));
    const double nll = std::log(sum) + double(mx) - double(logits[target]);
    const double p_target = std::exp(double(logits[target]) - double(mx)) / sum;
    for (int64_t i = 0; i < V; ++i) logits[i] = float(double(scale) * std::exp(double(logits[i]) - double(mx)) / sum);
    logits[target] = float(double(scale) * (p_target - 1.0));  // in double: p - 1 cancels when p is near 1
    return nll;
}

}  // namespace minigpt
