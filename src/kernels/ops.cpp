#include "kernels/ops.h"

#include <cmath>
#include <cstring>
#include <limits>

#include "format/f16.h"

namespace minigpt {

void layer_norm(float* out, const float* x, int64_t rows, int64_t dim, const Vector& w, const Vector& b, float eps) {
    for (int64_t r = 0; r < rows; ++r) {
        const float* xr = x + r * dim;
        float* orow = out + r * dim;
        // Two passes in double: mean first, then the variance about it (no cancellation).
        double sum = 0;
        for (int64_t i = 0; i < dim; ++i) sum += xr[i];
        const double mean = sum / double(dim);
        double var = 0;
        for (int64_t i = 0; i < dim; ++i) {
            const double d = xr[i] - mean;
            var += d * d;
        }
        const float inv = float(1.0 / std::sqrt(var / double(dim) + double(eps)));
        const float m = float(mean);
        for (int64_t i = 0; i < dim; ++i) orow[i] = (xr[i] - m) * inv * w.data[i] + b.data[i];
    }
}

void gelu(float* x, int64_t n) {
    const float k = 0.7978845608028654f;  // sqrt(2/pi)
    for (int64_t i = 0; i < n; ++i) {
        const float v = x[i];
        x[i] = 0.5f * v * (1.0f + std::tanh(k * (v + 0.044715f * v * v * v)));
    }
}

void add_bias(float* x, int64_t rows, int64_t dim, const float* b) {
    for (int64_t r = 0; r < rows; ++r) {
        float* xr = x + r * dim;
        for (int64_t i = 0; i < dim; ++i) xr[i] += b[i];
    }
}

void add(float* y, const float* x, int64_t n) {
    for (int64_t i = 0; i < n; ++i) y[i] += x[i];
}

void softmax(float* x, int64_t n) {
    float mx = -std::numeric_limits<float>::infinity();
    for (int64_t i = 0; i < n; ++i) mx = x[i] > mx ? x[i] : mx;
    double sum = 0;
    for (int64_t i = 0; i < n; ++i) {
        const float e = std::exp(x[i] - mx);
        x[i] = e;
        sum += e;
    }
    const float inv = float(1.0 / sum);
    for (int64_t i = 0; i < n; ++i) x[i] *= inv;
}

}  // namespace minigpt
