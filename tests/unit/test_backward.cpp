// The backward kernels (kernels/backward.h) against central finite differences
// of float64 forward functions written here: each test draws float inputs,
// defines f = Σ dy ⊙ forward(inputs) in double and checks the kernel's gradient
// against (f(x + h) - f(x - h)) / 2h, h = 1e-5 (truncation error ~h² f''' ≈ 1e-10,
// far below the float rounding of the kernels, ~1e-7 relative). Errors are
// relative to the largest |gradient| of each case; every tolerance sits beside
// the measured difference.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "format/f16.h"
#include "kernels/backward.h"
#include "util/thread_pool.h"

using namespace minigpt;

namespace {

constexpr double kStep = 1e-5;

std::vector<float> randn(size_t n, uint32_t seed, float scale = 1.f) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> nd(0.f, scale);
    std::vector<float> v(n);
    for (float& x : v) x = nd(rng);
    return v;
}

// Central differences of f with respect to every element of x (changed and restored).
std::vector<double> numeric_grad(std::vector<double>& x, const std::function<double()>& f) {
    std::vector<double> g(x.size());
    for (size_t i = 0; i < x.size(); ++i) {
        const double keep = x[i];
        x[i] = keep + kStep;
        const double up = f();
        x[i] = keep - kStep;
        const double down = f();
        x[i] = keep;
        g[i] = (up - down) / (2 * kStep);
    }
    return g;
}

// max |got - want| / max |want|.
double rel_error(const std::vector<float>& got, const std::vector<double>& want) {
    double diff = 0, scale = 0;
    for (size_t i = 0; i < want.size(); ++i) {
        diff = std::max(diff, std::abs(double(got[i]) - want[i]));
        scale = std::max(scale, std::abs(want[i]));
    }
    return diff / scale;
}

std::vector<double> widen(const std::vector<float>& v) { return std::vector<double>(v.begin(), v.end()); }

double layer_norm_row(const double* x, int64_t dim, const float* w, const float* b, const float* dy, double eps) {
    double mean = 0, var = 0;
    for (int64_t i = 0; i < dim; ++i) mean += x[i];
    mean /= double(dim);
    for (int64_t i = 0; i < dim; ++i) var += (x[i] - mean) * (x[i] - mean);
    const double rstd = 1 / std::sqrt(var / double(dim) + eps);
    double f = 0;
    for (int64_t i = 0; i < dim; ++i) f += dy[i] * ((x[i] - mean) * rstd * w[i] + b[i]);
    return f;
}

double gelu64(double x) { return 0.5 * x * (1 + std::tanh(std::sqrt(2 / M_PI) * (x + 0.044715 * x * x * x))); }

// Σ dz ⊙ z for causal attention of one head, all in double; q, k, v (T, hd) contiguous.
double attention_f(const std::vector<double>& q, const std::vector<double>& k, const std::vector<double>& v,
                   const std::vector<float>& dz, int64_t T, int64_t hd, double scale) {
    double f = 0;
    std::vector<double> p(static_cast<size_t>(T));
    for (int64_t i = 0; i < T; ++i) {
        double mx = -1e300;
        for (int64_t j = 0; j <= i; ++j) {
            double s = 0;
            for (int64_t c = 0; c < hd; ++c) s += q[size_t(i * hd + c)] * k[size_t(j * hd + c)];
            p[size_t(j)] = s * scale;
            mx = std::max(mx, p[size_t(j)]);
        }
        double sum = 0;
        for (int64_t j = 0; j <= i; ++j) sum += (p[size_t(j)] = std::exp(p[size_t(j)] - mx));
        for (int64_t c = 0; c < hd; ++c) {
            double z = 0;
            for (int64_t j = 0; j <= i; ++j) z += p[size_t(j)] / sum * v[size_t(j * hd + c)];
            f += dz[size_t(i * hd + c)] * z;
        }
    }
    return f;
}

// -log softmax(l)[t] in double.
double nll64(const std::vector<double>& l, size_t t) {
    const double mx = *std::max_element(l.begin(), l.end());
    double s = 0;
    for (double x : l) s += std::exp(x - mx);
    return std::log(s) + mx - l[t];
}

// A random weight matrix in `type` and its exact values in double (f16: the
// stored halves widened; q8_0: scale · q, read from the blocks here).
struct Weights {
    std::vector<uint8_t> bytes;
    std::vector<double> exact;  // (rows, cols)
    Matrix m;
    Weights(DType type, int64_t rows, int64_t cols, uint32_t seed) {
        const std::vector<float> v = randn(size_t(rows * cols), seed, 0.5f);
        exact.resize(v.size());
        bytes.resize(size_t(rows * dtype_row_bytes(type, cols)));
        if (type == DType::F32) {
            std::copy(v.begin(), v.end(), reinterpret_cast<float*>(bytes.data()));
            for (size_t i = 0; i < v.size(); ++i) exact[i] = v[i];
        } else if (type == DType::F16) {
            uint16_t* p = reinterpret_cast<uint16_t*>(bytes.data());
            for (size_t i = 0; i < v.size(); ++i) exact[i] = f16_to_f32(p[i] = f32_to_f16(v[i]));
        } else {
            BlockQ8_0* b = reinterpret_cast<BlockQ8_0*>(bytes.data());
            for (size_t blk = 0; blk < v.size() / kQ8_0Block; ++blk) {
                b[blk].scale = f32_to_f16(0.01f * float(1 + blk % 5));
                for (int j = 0; j < kQ8_0Block; ++j) {
                    b[blk].q[j] = int8_t(std::lround(std::clamp(v[blk * kQ8_0Block + j] * 100.f, -127.f, 127.f)));
                    exact[blk * kQ8_0Block + j] = double(f16_to_f32(b[blk].scale)) * b[blk].q[j];
                }
            }
        }
        m = Matrix{type, rows, cols, bytes.data()};
    }
};

}  // namespace

TEST_CASE("backward: layernorm_backward equals finite differences and accumulates into dx") {
    const int64_t rows = 3, dim = 37;
    const float eps = 1e-5f;
    const std::vector<float> xf = randn(size_t(rows * dim), 1, 2.f), w = randn(size_t(dim), 2), b = randn(size_t(dim), 3),
                             dy = randn(size_t(rows * dim), 4);
    std::vector<float> dx = randn(size_t(rows * dim), 5);  // "+=": start from something
    const std::vector<float> before = dx;
    layernorm_backward(dx.data(), dy.data(), xf.data(), rows, dim, w.data(), eps);
    std::vector<double> x = widen(xf);
    const std::vector<double> want = numeric_grad(x, [&] {
        double f = 0;
        for (int64_t r = 0; r < rows; ++r) f += layer_norm_row(x.data() + r * dim, dim, w.data(), b.data(), dy.data() + r * dim, eps);
        return f;
    });
    std::vector<float> got(dx.size());
    for (size_t i = 0; i < dx.size(); ++i) got[i] = dx[i] - before[i];
    const double err = rel_error(got, want);
    MESSAGE("layernorm_backward: max |kernel - finite differences| / max |grad| = " << err << " (tolerance 1e-6; measured 7.6e-8)");
    CHECK(err < 1e-6);
}

TEST_CASE("backward: gelu_backward equals finite differences over [-6, 6]") {
    std::vector<float> xf, dy = randn(241, 6);
    for (int i = 0; i <= 240; ++i) xf.push_back(-6.f + 0.05f * float(i));
    std::vector<float> dx(xf.size());
    gelu_backward(dx.data(), xf.data(), dy.data(), int64_t(xf.size()));
    std::vector<double> want(xf.size());
    for (size_t i = 0; i < xf.size(); ++i)
        want[i] = dy[i] * (gelu64(double(xf[i]) + kStep) - gelu64(double(xf[i]) - kStep)) / (2 * kStep);
    const double err = rel_error(dx, want);
    MESSAGE("gelu_backward: max relative difference " << err << " (tolerance 2e-7; measured 2.4e-8)");
    CHECK(err < 2e-7);
}

TEST_CASE("backward: softmax_backward equals finite differences") {
    const int64_t n = 19;
    const std::vector<float> sf = randn(size_t(n), 7, 3.f), dp = randn(size_t(n), 8);
    std::vector<double> s = widen(sf);
    auto f = [&] {
        const double mx = *std::max_element(s.begin(), s.end());
        double sum = 0, dot = 0;
        for (double v : s) sum += std::exp(v - mx);
        for (int64_t i = 0; i < n; ++i) dot += dp[size_t(i)] * std::exp(s[size_t(i)] - mx) / sum;
        return dot;
    };
    std::vector<float> p(static_cast<size_t>(n));
    const double mx = *std::max_element(s.begin(), s.end());
    double sum = 0;
    for (double v : s) sum += std::exp(v - mx);
    for (int64_t i = 0; i < n; ++i) p[size_t(i)] = float(std::exp(s[size_t(i)] - mx) / sum);
    std::vector<float> ds(static_cast<size_t>(n));
    softmax_backward(ds.data(), p.data(), dp.data(), n);
    const double err = rel_error(ds, numeric_grad(s, f));
    MESSAGE("softmax_backward: max relative difference " << err << " (tolerance 5e-6; measured 7.0e-7)");
    CHECK(err < 5e-6);
}

TEST_CASE("backward: attention_backward (causal, one head inside an interleaved q|k|v) equals finite differences") {
    const int64_t T = 9, hd = 6, heads = 2, d = heads * hd, ld = 3 * d, h = 1;  // head 1 of 2
    const double scale = 1 / std::sqrt(double(hd));
    const std::vector<float> qkv = randn(size_t(T * ld), 9), dz = randn(size_t(T * hd), 10);
    std::vector<double> q(size_t(T * hd)), k(q.size()), v(q.size());
    for (int64_t t = 0; t < T; ++t)
        for (int64_t c = 0; c < hd; ++c) {
            q[size_t(t * hd + c)] = qkv[size_t(t * ld + h * hd + c)];
            k[size_t(t * hd + c)] = qkv[size_t(t * ld + d + h * hd + c)];
            v[size_t(t * hd + c)] = qkv[size_t(t * ld + 2 * d + h * hd + c)];
        }
    std::vector<float> dqkv(size_t(T * ld), 0.f), scratch(size_t(attention_backward_scratch(T)));
    std::vector<float> dz_strided(size_t(T * d), 0.f);  // dz inside a (T, d) buffer, as the model passes it
    for (int64_t t = 0; t < T; ++t)
        for (int64_t c = 0; c < hd; ++c) dz_strided[size_t(t * d + h * hd + c)] = dz[size_t(t * hd + c)];
    attention_backward(dqkv.data() + h * hd, dqkv.data() + d + h * hd, dqkv.data() + 2 * d + h * hd, ld,
                       dz_strided.data() + h * hd, d, qkv.data() + h * hd, qkv.data() + d + h * hd,
                       qkv.data() + 2 * d + h * hd, ld, T, hd, float(scale), scratch.data());
    auto f = [&] { return attention_f(q, k, v, dz, T, hd, scale); };
    const char* names[3] = {"dq", "dk", "dv"};
    std::vector<double>* inputs[3] = {&q, &k, &v};
    for (int part = 0; part < 3; ++part) {
        const std::vector<double> want = numeric_grad(*inputs[part], f);
        std::vector<float> got(size_t(T * hd));
        for (int64_t t = 0; t < T; ++t)
            for (int64_t c = 0; c < hd; ++c) got[size_t(t * hd + c)] = dqkv[size_t(t * ld + part * d + h * hd + c)];
        const double err = rel_error(got, want);
        MESSAGE("attention_backward " << std::string(names[part]) << ": max relative difference " << err
                                        << " (tolerance 2e-6; measured up to 2.1e-7)");
        CHECK(err < 2e-6);
    }
    for (int64_t t = 0; t < T; ++t)  // the other head's columns are untouched
        for (int64_t c = 0; c < hd; ++c) CHECK(dqkv[size_t(t * ld + c)] == 0.f);
}

TEST_CASE("backward: matmul_backward equals dout · W for f32, f16 and q8_0, tiled and threaded") {
    ThreadPool pool(3);
    for (DType type : {DType::F32, DType::F16, DType::Q8_0}) {
        // 300 rows: more than one tile of MatmulBackwardScratch::kTileRows (256) and a remainder.
        const int64_t n = 5, rows = 300, cols = 96;
        Weights w(type, rows, cols, 11);
        const std::vector<float> dout = randn(size_t(n * rows), 12);
        const std::vector<float> start = randn(size_t(n * cols), 13);
        std::vector<double> want(size_t(n * cols));  // dout · W in double, from the exact weights
        for (int64_t i = 0; i < n; ++i)
            for (int64_t c = 0; c < cols; ++c) {
                double s = 0;
                for (int64_t r = 0; r < rows; ++r) s += double(dout[size_t(i * rows + r)]) * w.exact[size_t(r * cols + c)];
                want[size_t(i * cols + c)] = s;
            }
        for (ThreadPool* p : {static_cast<ThreadPool*>(nullptr), &pool}) {
            std::vector<float> din = start;
            MatmulBackwardScratch scratch;
            matmul_backward(din.data(), dout.data(), n, w.m, scratch, p);
            for (size_t i = 0; i < din.size(); ++i) din[i] -= start[i];  // "+="
            const double err = rel_error(din, want);
            MESSAGE("matmul_backward " << std::string(dtype_name(type)) << std::string(p ? ", 3 threads" : ", no pool")
                                       << ": max relative difference " << err << " (tolerance 3e-6; measured up to 4.0e-7)");
            CHECK(err < 3e-6);
        }
    }
}

TEST_CASE("backward: cross-entropy and the tied LM head: d mean NLL / d h equals finite differences") {
    // h (rows, d) -> logits = h · Eᵀ (rows, V) -> L = mean_r NLL(logits_r, target_r);
    // backward: crossentropy_softmax_backward, then matmul_backward with E (the LM head).
    const int64_t rows = 4, d = 32, V = 50;
    Weights e(DType::F16, V, d, 14);
    const std::vector<float> hf = randn(size_t(rows * d), 15);
    const int32_t targets[rows] = {3, 49, 0, 17};
    std::vector<float> logits(size_t(rows * V));
    for (int64_t r = 0; r < rows; ++r)
        for (int64_t v = 0; v < V; ++v) {
            double s = 0;
            for (int64_t c = 0; c < d; ++c) s += double(hf[size_t(r * d + c)]) * e.exact[size_t(v * d + c)];
            logits[size_t(r * V + v)] = float(s);
        }
    std::vector<double> h = widen(hf);
    auto loss = [&] {
        double L = 0;
        for (int64_t r = 0; r < rows; ++r) {
            std::vector<double> l(static_cast<size_t>(V));
            for (int64_t v = 0; v < V; ++v)
                for (int64_t c = 0; c < d; ++c) l[size_t(v)] += h[size_t(r * d + c)] * e.exact[size_t(v * d + c)];
            L += nll64(l, size_t(targets[r]));
        }
        return L / double(rows);
    };
    double nll_sum = 0;
    for (int64_t r = 0; r < rows; ++r)
        nll_sum += crossentropy_softmax_backward(logits.data() + r * V, V, targets[r], 1.f / float(rows));
    const double loss_err = std::abs(nll_sum / double(rows) - loss());
    MESSAGE("mean NLL: |kernel - double| = " << loss_err << " (tolerance 3e-7; measured 2.9e-8)");
    CHECK(loss_err < 3e-7);
    std::vector<float> dh(size_t(rows * d), 0.f);
    MatmulBackwardScratch scratch;
    matmul_backward(dh.data(), logits.data(), rows, e.m, scratch, nullptr);
    const double err = rel_error(dh, numeric_grad(h, loss));
    MESSAGE("LM head + cross-entropy backward: max relative difference " << err << " (tolerance 2e-6; measured 2.0e-7)");
    CHECK(err < 2e-6);
}
