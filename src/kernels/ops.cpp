#include "kernels/ops.h"

#include "kernels/kernels.h"

namespace minigpt {

void layer_norm(float* out, const float* x, int64_t rows, int64_t dim, const Vector& w, const Vector& b, float eps) {
    layer_norm_parallel(out, x, rows, dim, w.data, b.data, eps, nullptr);
}

void gelu(float* x, int64_t n) { kernels().gelu(x, n); }

void add(float* y, const float* x, int64_t n) {
    for (int64_t i = 0; i < n; ++i) y[i] += x[i];
}

void softmax(float* x, int64_t n) { kernels().softmax(x, n); }

}  // namespace minigpt
