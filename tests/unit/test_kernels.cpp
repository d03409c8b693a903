// Every SIMD kernel against its naive scalar twin, for each instruction set
// this CPU can run (AVX-512 and AVX2 are both forced in turn on an AVX-512
// machine); the thread pool; batched linear layers and attention against
// their one-token forms.
#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <random>
#include <thread>
#include <vector>

#include "runtime/attention.h"
#include "format/f16.h"
#include "kernels/kernels.h"
#include "runtime/linear.h"
#include "util/read_bandwidth.h"
#include "util/step_handoff.h"
#include "util/thread_pool.h"

using namespace minigpt;

namespace {

// Runs body once per instruction set available here, with it forced; restores
// the default afterwards.
template <class F>
void for_each_isa(F body) {
    const KernelIsa before = kernels().isa;
    int ran = 0;
    for (KernelIsa isa : {KernelIsa::Scalar, KernelIsa::Avx2, KernelIsa::Avx512}) {
        if (!kernels_for(isa)) continue;
        force_kernel_isa(isa);
        const std::string isa_name = kernels().name;
        CAPTURE(isa_name);
        body(kernels());
        ++ran;
    }
    force_kernel_isa(before);
    MESSAGE("instruction sets tested: " << ran << " (default " << std::string(kernel_isa()) << ")");
}

std::vector<float> normal_floats(int64_t n, uint32_t seed, float scale = 1.f) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> nd(0.f, scale);
    std::vector<float> v(static_cast<size_t>(n));
    for (float& x : v) x = nd(rng);
    return v;
}

// A weight matrix of `rows` x `cols` in `type`, random, with its storage.
struct TestMatrix {
    std::vector<uint8_t> bytes;
    Matrix m;
    TestMatrix(DType type, int64_t rows, int64_t cols, uint32_t seed) {
        std::mt19937 rng(seed);
        std::normal_distribution<float> nd(0.f, 0.5f);
        bytes.resize(size_t(rows * dtype_row_bytes(type, cols)));
        if (type == DType::F32) {
            float* p = reinterpret_cast<float*>(bytes.data());
            for (int64_t i = 0; i < rows * cols; ++i) p[i] = nd(rng);
        } else if (type == DType::F16) {
            uint16_t* p = reinterpret_cast<uint16_t*>(bytes.data());
            for (int64_t i = 0; i < rows * cols; ++i) p[i] = f32_to_f16(nd(rng));
        } else {
            BlockQ8_0* b = reinterpret_cast<BlockQ8_0*>(bytes.data());
            std::uniform_int_distribution<int> q(-127, 127);
            for (int64_t i = 0; i < rows * cols / kQ8_0Block; ++i) {
                b[i].scale = f32_to_f16(0.004f * float(1 + i % 7));
                for (int8_t& v : b[i].q) v = int8_t(q(rng));
            }
        }
        m = Matrix{type, rows, cols, bytes.data()};
    }
};

// Room for n quantized vectors of `cols` values.
struct QuantizedVectors {
    std::vector<int8_t> q;
    std::vector<float> d;
    std::vector<int32_t> off;
    std::vector<QuantizedVector> v;
    QuantizedVectors(int64_t n, int64_t cols)
        : q(size_t(n * cols)), d(size_t(n * cols / 32)), off(size_t(n * cols / 4)), v(size_t(n)) {
        for (int64_t i = 0; i < n; ++i)
            v[size_t(i)] = QuantizedVector{cols / 32, q.data() + i * cols, d.data() + i * cols / 32, off.data() + i * cols / 4};
    }
};

// Sum of |w_i x_i| of row r: the scale of the rounding error of its dot product.
float abs_dot(const Matrix& w, int64_t r, const float* x) {
    std::vector<float> row(static_cast<size_t>(w.cols));
    dequantize_row(row.data(), w, r);
    float s = 0;
    for (int64_t i = 0; i < w.cols; ++i) s += std::fabs(row[size_t(i)] * x[i]);
    return s;
}

}  // namespace

TEST_CASE("kernels: MINIGPT_ISA picks the kernels in use (run.py runs the kernel and forward tests again under MINIGPT_ISA=avx2)") {
    const char* env = std::getenv("MINIGPT_ISA");
    if (env && *env) {
        // The forced table, not the best one: the second run really exercises AVX2.
        CHECK(std::string(kernel_isa()) == env);
        MESSAGE("MINIGPT_ISA=" << std::string(env) << ": kernels in use " << std::string(kernel_isa()));
    }
    CHECK(parse_kernel_isa("avx512", "MINIGPT_ISA") == KernelIsa::Avx512);
    CHECK(parse_kernel_isa("avx2", "MINIGPT_ISA") == KernelIsa::Avx2);
    CHECK(parse_kernel_isa("scalar", "MINIGPT_ISA") == KernelIsa::Scalar);
    CHECK_THROWS_WITH(parse_kernel_isa("AVX2", "MINIGPT_ISA"),
                      "MINIGPT_ISA=AVX2: unknown instruction set (avx512, avx2 or scalar)");
    CHECK_THROWS_WITH(parse_kernel_isa("", "MINIGPT_ISA"), "MINIGPT_ISA=: unknown instruction set (avx512, avx2 or scalar)");
}

TEST_CASE("kernels: f32 and f16 GEMV equal the scalar loop (all row/column remainders)") {
    for_each_isa([](const KernelTable& kt) {
        for (DType type : {DType::F32, DType::F16}) {
            float worst = 0;
            for (int64_t cols : {8, 16, 24, 40, 100, 768}) {
                for (int64_t rows : {1, 3, 4, 9}) {
                    TestMatrix w(type, rows, cols, uint32_t(cols * 10 + rows));
                    const auto x = normal_floats(cols, uint32_t(cols));
                    std::vector<float> y(static_cast<size_t>(rows)), ref(static_cast<size_t>(rows));
                    auto fn = type == DType::F32 ? kt.gemv_f32 : kt.gemv_f16;
                    fn(y.data(), w.m.row(0), w.m.row_bytes(), rows, x.data(), cols);
                    (type == DType::F32 ? kernels_scalar().gemv_f32 : kernels_scalar().gemv_f16)(
                        ref.data(), w.m.row(0), w.m.row_bytes(), rows, x.data(), cols);
                    for (int64_t r = 0; r < rows; ++r)
                        worst = std::max(worst, std::fabs(y[size_t(r)] - ref[size_t(r)]) / abs_dot(w.m, r, x.data()));
                }
            }
            MESSAGE(std::string(dtype_name(type)) << ": max |simd - scalar| / sum|w x| = " << worst << " (tolerance 1e-6)");
            CHECK(worst <= 1e-6f);
        }
    });
}

TEST_CASE("kernels: a decoding GEMV row's number depends neither on the rows read beside it nor on where the rows lie") {
    // The AVX-512 kernels read the rows as four streams (the rows cut into four parts)
    // and f32 rows that do not start on a cache line through 32-byte halves: each row
    // must still come out bit for bit as when it is computed alone, from aligned memory.
    for_each_isa([](const KernelTable& kt) {
        for (DType type : {DType::F32, DType::F16, DType::Q8_0}) {
            for (int64_t cols : {768, 96, 40}) {
                if (type == DType::Q8_0 && cols % 32) continue;
                const int64_t rows = 19;  // four parts of 4 rows and 3 rows alone
                TestMatrix w(type, rows, cols, uint32_t(cols + rows));
                const auto x = normal_floats(cols, uint32_t(cols) + 1);
                QuantizedVectors xq(1, cols);
                if (type == DType::Q8_0) kt.quantize_q8_0(x.data(), cols, xq.v[0]);
                const int64_t ld = w.m.row_bytes();
                auto gemv = [&](float* y, const uint8_t* rows_at, int64_t n_rows) {
                    if (type == DType::F32) kt.gemv_f32(y, rows_at, ld, n_rows, x.data(), cols);
                    if (type == DType::F16) kt.gemv_f16(y, rows_at, ld, n_rows, x.data(), cols);
                    if (type == DType::Q8_0) kt.gemm_q8_0(y, n_rows, rows_at, ld, n_rows, xq.v.data(), 1);
                };
                // The rows again at 64-byte-aligned + 32 and + 4 (f32, f16) bytes.
                std::vector<uint8_t> space(size_t(rows * ld) + 128);
                uint8_t* aligned = space.data() + (64 - reinterpret_cast<uintptr_t>(space.data()) % 64) % 64;
                std::vector<float> all(static_cast<size_t>(rows)), shifted(static_cast<size_t>(rows));
                gemv(all.data(), w.m.row(0), rows);
                for (int64_t shift : {0, 32, 4}) {
                    if (shift == 4 && type == DType::Q8_0) continue;
                    std::memcpy(aligned + shift, w.m.row(0), size_t(rows * ld));
                    gemv(shifted.data(), aligned + shift, rows);
                    CAPTURE(shift);
                    CHECK(std::memcmp(shifted.data(), all.data(), all.size() * sizeof(float)) == 0);
                }
                for (int64_t r = 0; r < rows; ++r) {
                    float alone = 0;
                    gemv(&alone, w.m.row(r), 1);
                    CAPTURE(r);
                    CHECK(std::memcmp(&alone, &all[size_t(r)], sizeof(float)) == 0);
                }
            }
        }
    });
}

TEST_CASE("kernels: decoding GEMV steps taken in any runs give every row the number of the whole range") {
    // gemv with a pool hands runs of steps of one thread's range to another
    // (kernels.cpp): the runs must give each row what one pass over the range gives.
    for_each_isa([](const KernelTable& kt) {
        for (DType type : {DType::F32, DType::F16, DType::Q8_0}) {
            for (int64_t cols : {768, 96}) {
                const int64_t part = 13, rows = kGemvParts * part;
                TestMatrix w(type, rows, cols, uint32_t(cols + 7));
                const auto x = normal_floats(cols, uint32_t(cols) + 2);
                QuantizedVectors xq(1, cols);
                if (type == DType::Q8_0) kt.quantize_q8_0(x.data(), cols, xq.v[0]);
                const int64_t ld = w.m.row_bytes();
                std::vector<float> whole(static_cast<size_t>(rows)), runs(static_cast<size_t>(rows), -1.f);
                if (type == DType::F32) kt.gemv_f32(whole.data(), w.m.row(0), ld, rows, x.data(), cols);
                if (type == DType::F16) kt.gemv_f16(whole.data(), w.m.row(0), ld, rows, x.data(), cols);
                if (type == DType::Q8_0) kt.gemm_q8_0(whole.data(), rows, w.m.row(0), ld, rows, xq.v.data(), 1);
                for (auto [a, b] : {std::pair<int64_t, int64_t>{0, 5}, {5, 6}, {6, 13}}) {
                    if (type == DType::F32) kt.gemv_f32_parts(runs.data() + a, w.m.row(a), ld, part, b - a, x.data(), cols);
                    if (type == DType::F16) kt.gemv_f16_parts(runs.data() + a, w.m.row(a), ld, part, b - a, x.data(), cols);
                    if (type == DType::Q8_0) kt.gemv_q8_0_parts(runs.data() + a, w.m.row(a), ld, part, b - a, xq.v.data());
                }
                CAPTURE(cols);
                CHECK(std::memcmp(runs.data(), whole.data(), whole.size() * sizeof(float)) == 0);
            }
        }
    });
}

TEST_CASE("kernels: gemv with a pool equals gemv on one thread bit for bit, bias included") {
    // More threads than this machine's cores (3, 5 on 2 vCPUs): threads fall behind and
    // others take steps of their ranges (a range hands some over only while it has 256
    // KiB left, hence the 40003 rows). Row counts leave ranges with rows
    // after their four parts, and 50 leaves ranges of a few steps only.
    for (DType type : {DType::F32, DType::F16, DType::Q8_0}) {
        for (int64_t rows : {40003, 777, 50}) {
            const int64_t cols = 96;
            TestMatrix w(type, rows, cols, uint32_t(rows));
            const auto x = normal_floats(cols, 5);
            const auto bias = normal_floats(rows, 6);
            std::vector<float> one(static_cast<size_t>(rows));
            gemv(one.data(), w.m, x.data(), bias.data(), nullptr);
            for (int threads : {2, 3, 5}) {
                ThreadPool pool(threads);
                int64_t differing = 0;
                for (int rep = 0; rep < 20; ++rep) {
                    std::vector<float> many(static_cast<size_t>(rows), -1.f);
                    gemv(many.data(), w.m, x.data(), bias.data(), &pool);
                    differing += std::memcmp(many.data(), one.data(), one.size() * sizeof(float)) != 0;
                }
                CAPTURE(rows);
                CAPTURE(threads);
                CHECK(differing == 0);
            }
        }
    }
}

TEST_CASE("kernels: q8_0 activation quantization is ggml's formula, identical in every instruction set") {
    const int64_t n = 256;
    auto x = normal_floats(n, 3, 2.f);
    x[5] = 0.f;
    std::fill(x.begin() + 64, x.begin() + 96, 0.f);  // an all-zero block: d = 0, q = 0
    x[100] = 1e-30f;
    QuantizedVectors ref(1, n);
    kernels_scalar().quantize_q8_0(x.data(), n, ref.v[0]);
    // The scalar twin against the definition: d = amax/127 rounded to f16, q = nearest-even(x * 127/amax).
    for (int64_t b = 0; b < n / 32; ++b) {
        float amax = 0;
        for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[size_t(b * 32 + j)]));
        const float d = amax / 127.f, id = d != 0.f ? 1.f / d : 0.f;
        CHECK(ref.d[size_t(b)] == f16_to_f32(f32_to_f16(d)));
        for (int j = 0; j < 32; ++j) {
            CHECK(int(ref.q[size_t(b * 32 + j)]) == int(std::nearbyint(x[size_t(b * 32 + j)] * id)));
            CHECK(std::abs(int(ref.q[size_t(b * 32 + j)])) <= 127);
        }
        for (int g = 0; g < 8; ++g) {
            int sum = 0;
            for (int j = 0; j < 4; ++j) sum += ref.q[size_t(b * 32 + 4 * g + j)];
            CHECK(ref.off[size_t(b * 8 + g)] == -128 * sum);
        }
    }
    for_each_isa([&](const KernelTable& kt) {
        QuantizedVectors got(1, n);
        kt.quantize_q8_0(x.data(), n, got.v[0]);
        CHECK(got.v[0].n_blocks == n / 32);
        CHECK(got.q == ref.q);
        CHECK(got.d == ref.d);
        CHECK(got.off == ref.off);
    });
}

TEST_CASE("kernels: q8_0 x q8_0 GEMM equals the scalar integer dot; batch results bit-identical to single vectors") {
    for_each_isa([](const KernelTable& kt) {
        float worst = 0;
        for (int64_t cols : {32, 64, 96, 768}) {  // 1, 2, 3 (odd) and 24 blocks
            const int64_t rows = 11, n = 5;
            TestMatrix w(DType::Q8_0, rows, cols, uint32_t(cols));
            const auto x = normal_floats(n * cols, uint32_t(cols + 1));
            QuantizedVectors xq(n, cols);
            for (int64_t t = 0; t < n; ++t) kernels_scalar().quantize_q8_0(x.data() + t * cols, cols, xq.v[size_t(t)]);
            std::vector<float> y(static_cast<size_t>(n * rows)), ref(static_cast<size_t>(n * rows));
            kt.gemm_q8_0(y.data(), rows, w.m.row(0), w.m.row_bytes(), rows, xq.v.data(), n);
            kernels_scalar().gemm_q8_0(ref.data(), rows, w.m.row(0), w.m.row_bytes(), rows, xq.v.data(), n);
            bool identical = true;
            for (int64_t t = 0; t < n; ++t) {
                std::vector<float> one(static_cast<size_t>(rows));
                kt.gemm_q8_0(one.data(), rows, w.m.row(0), w.m.row_bytes(), rows, &xq.v[size_t(t)], 1);
                for (int64_t r = 0; r < rows; ++r) {
                    const size_t i = size_t(t * rows + r);
                    identical &= std::memcmp(&one[size_t(r)], &y[i], sizeof(float)) == 0;
                    // Scale of the float rounding: sum over blocks of |d_w d_x dot|, bounded by sum |w x|.
                    worst = std::max(worst, std::fabs(y[i] - ref[i]) / (1e-3f + abs_dot(w.m, r, x.data() + t * cols)));
                }
            }
            CAPTURE(cols);
            CHECK(identical);
        }
        MESSAGE("q8_0: max |simd - scalar| / sum|w x| = " << worst << " (tolerance 4e-7)");
        CHECK(worst <= 4e-7f);  // measured 4.2e-8 (AVX2 and AVX-512): the integer dots are exact
    });
}

TEST_CASE("kernels: q8_0 decoding error stays within the activation quantization bound") {
    // |W·x - W·x̂| <= sum_i |w_i| |x_i - x̂_i|, with |x - x̂| <= d_x/2 plus the f16 rounding of d_x.
    const int64_t rows = 16, cols = 768;
    TestMatrix w(DType::Q8_0, rows, cols, 9);
    const auto x = normal_floats(cols, 10);
    std::vector<float> y(rows);
    gemv(y.data(), w.m, x.data(), nullptr, nullptr);
    float worst_ratio = 0;
    for (int64_t r = 0; r < rows; ++r) {
        std::vector<float> row(cols);
        dequantize_row(row.data(), w.m, r);
        double exact = 0, bound = 0;
        for (int64_t b = 0; b < cols / 32; ++b) {
            float amax = 0;
            for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[size_t(b * 32 + j)]));
            const double step = amax / 127.0;
            for (int j = 0; j < 32; ++j) {
                const size_t i = size_t(b * 32 + j);
                exact += double(row[i]) * x[i];
                bound += std::fabs(row[i]) * (0.5 * step * 1.001 + std::fabs(x[i]) * 1e-3);  // + f16 scale rounding
            }
        }
        worst_ratio = std::max(worst_ratio, float(std::fabs(y[size_t(r)] - exact) / bound));
    }
    MESSAGE("q8_0 GEMV: max |error| / bound = " << worst_ratio << " (must be <= 1)");
    CHECK(worst_ratio <= 1.f);
    CHECK(worst_ratio > 0.f);  // the activation really is quantized
}

TEST_CASE("kernels: dequantization equals the scalar conversion exactly") {
    for_each_isa([](const KernelTable& kt) {
        for (DType type : {DType::F16, DType::Q8_0}) {
            const int64_t cols = 96 + (type == DType::F16 ? 7 : 0);
            TestMatrix w(type, 1, cols, 4);
            std::vector<float> a(static_cast<size_t>(cols)), b(static_cast<size_t>(cols));
            (type == DType::F16 ? kt.dequantize_f16 : kt.dequantize_q8_0)(a.data(), w.m.row(0), cols);
            (type == DType::F16 ? kernels_scalar().dequantize_f16 : kernels_scalar().dequantize_q8_0)(b.data(), w.m.row(0), cols);
            CHECK(a == b);
        }
    });
}

TEST_CASE("kernels: attention scores, softmax and weighted values equal the scalar loops") {
    for_each_isa([](const KernelTable& kt) {
        float worst_s = 0, worst_p = 0, worst_z = 0, worst_sum = 0;
        for (int64_t hd : {64, 24, 80, 5}) {
            for (int64_t T : {1, 2, 7, 33, 130}) {
                const auto q = normal_floats(hd, 1), k = normal_floats(T * hd, 2), v = normal_floats(T * hd, 3);
                const float scale = 1.f / std::sqrt(float(hd));
                std::vector<float> s(static_cast<size_t>(T)), sr(static_cast<size_t>(T));
                kt.attn_scores(s.data(), q.data(), k.data(), T, hd, scale);
                kernels_scalar().attn_scores(sr.data(), q.data(), k.data(), T, hd, scale);
                for (int64_t j = 0; j < T; ++j) {
                    float mag = 0;
                    for (int64_t d = 0; d < hd; ++d) mag += std::fabs(q[size_t(d)] * k[size_t(j * hd + d)]);
                    worst_s = std::max(worst_s, std::fabs(s[size_t(j)] - sr[size_t(j)]) / (mag * scale));
                }
                // Softmax on the same scores, some masked with -inf.
                std::vector<float> p = sr, pr = sr;
                for (int64_t j = 3; j < T; j += 5) p[size_t(j)] = pr[size_t(j)] = -std::numeric_limits<float>::infinity();
                if (T > 1) p[0] = pr[0] = -std::numeric_limits<float>::infinity();
                kt.softmax(p.data(), T);
                kernels_scalar().softmax(pr.data(), T);
                double sum = 0;
                for (int64_t j = 0; j < T; ++j) {
                    worst_p = std::max(worst_p, std::fabs(p[size_t(j)] - pr[size_t(j)]) / std::max(pr[size_t(j)], 1e-30f));
                    sum += p[size_t(j)];
                    if (std::isinf(sr[size_t(j)]) || (T > 1 && j == 0) || (j >= 3 && (j - 3) % 5 == 0))
                        CHECK(p[size_t(j)] == 0.f);
                }
                worst_sum = std::max(worst_sum, float(std::fabs(sum - 1.0)));
                CHECK(std::fabs(sum - 1.0) < 1e-6);  // measured 1.2e-7
                std::vector<float> z(static_cast<size_t>(hd)), zr(static_cast<size_t>(hd));
                kt.attn_values(z.data(), pr.data(), v.data(), T, hd, false);
                kernels_scalar().attn_values(zr.data(), pr.data(), v.data(), T, hd, false);
                for (int64_t d = 0; d < hd; ++d) {
                    float mag = 0;
                    for (int64_t j = 0; j < T; ++j) mag += std::fabs(pr[size_t(j)] * v[size_t(j * hd + d)]);
                    worst_z = std::max(worst_z, std::fabs(z[size_t(d)] - zr[size_t(d)]) / std::max(mag, 1e-30f));
                }
            }
        }
        MESSAGE("scores " << worst_s << ", softmax (relative) " << worst_p << ", values " << worst_z
                          << " (tolerances 1e-6, 1e-6, 6e-7); softmax |sum - 1| " << worst_sum);
        // measured 1.8e-7, 2.4e-7, 5.7e-8 (max over the instruction sets)
        CHECK(worst_s <= 1e-6f);
        CHECK(worst_p <= 1e-6f);
        CHECK(worst_z <= 6e-7f);
    });
}

TEST_CASE("kernels: softmax and GELU across the exp range") {
    for_each_isa([](const KernelTable& kt) {
        // Softmax of a row spanning the whole range of exp's argument.
        std::vector<float> x;
        for (float v = -120.f; v <= 0.f; v += 0.37f) x.push_back(v);
        std::vector<float> p = x, pr = x;
        kt.softmax(p.data(), int64_t(p.size()));
        kernels_scalar().softmax(pr.data(), int64_t(pr.size()));
        float worst_p = 0;
        for (size_t j = 0; j < p.size(); ++j)
            if (pr[j] > 1e-30f) worst_p = std::max(worst_p, std::fabs(p[j] - pr[j]) / pr[j]);
            else CHECK(p[j] < 1e-30f);
        // GELU against the formula in double. Computing u = sqrt(2/pi)(x + 0.044715x^3)
        // in float already costs a relative error of about |2u| * 6e-8 in the tail
        // x * sigmoid(2u), so the error is measured relative to |gelu| * (1 + |2u|).
        // The kernels' x * sigmoid(2u) form avoids the cancellation of 1 + tanh(u);
        // the float scalar loop has it, up to |x| * 3e-8 absolute.
        std::vector<float> g;
        for (float v = -12.f; v <= 12.f; v += 0.0137f) g.push_back(v);
        g.push_back(0.f), g.push_back(1e-20f), g.push_back(-1e-20f), g.push_back(60.f), g.push_back(-60.f);
        const std::vector<float> in = g;
        kt.gelu(g.data(), int64_t(g.size()));
        float worst_g = 0;
        for (size_t j = 0; j < g.size(); ++j) {
            const double v = in[j], u2 = 2.0 * 0.7978845608028654 * (v + 0.044715 * v * v * v);
            const double ref = v / (1.0 + std::exp(-u2));  // = 0.5 v (1 + tanh u), without cancellation
            const double cancellation = kt.isa == KernelIsa::Scalar ? 3e-8 * std::fabs(v) : 0.0;
            const double excess = std::max(0.0, std::fabs(g[j] - ref) - cancellation);
            worst_g = std::max(worst_g, float(excess / (std::fabs(ref) * (1.0 + std::fabs(u2)) + 1e-30)));
        }
        MESSAGE("softmax relative " << worst_p << ", GELU error / (|gelu| (1 + |2u|)) " << worst_g
                                      << " (tolerances 2e-6, 5e-7)");
        CHECK(worst_p <= 2e-6f);
        CHECK(worst_g <= 5e-7f);
    });
}

TEST_CASE("kernels: the AVX-512 GEMM (prefill, f32 and f16 weights) equals the naive triple loop") {
    for_each_isa([](const KernelTable& kt) {
        if (!kt.gemm) return;  // OpenBLAS does the batches on this instruction set
        for (DType type : {DType::F32, DType::F16}) {
            float worst = 0;
            // Sizes around every block edge: rows vs the 32-row panels, n vs the
            // 12-row micro-kernel, K vs the 768-deep blocks (one, and one and a bit).
            for (auto [n, rows, K] : {std::array<int64_t, 3>{1, 1, 1}, {13, 37, 300}, {12, 32, 768}, {25, 70, 800},
                                      {5, 100, 64}, {3, 33, 1600}}) {
                TestMatrix w(type, rows, K, uint32_t(n + rows + K));
                const auto a = normal_floats(n * K, uint32_t(K));
                std::vector<float> c(static_cast<size_t>(n * rows), -7.f), pack(static_cast<size_t>(kGemmPackFloats));
                kt.gemm(c.data(), rows, a.data(), K, n, w.m.row(0), w.m.row_bytes(), type == DType::F16, rows, K, pack.data());
                std::vector<float> wr(static_cast<size_t>(K));
                for (int64_t j = 0; j < rows; ++j) {
                    dequantize_row(wr.data(), w.m, j);
                    for (int64_t i = 0; i < n; ++i) {
                        double ref = 0, mag = 0;
                        for (int64_t k = 0; k < K; ++k) {
                            ref += double(a[size_t(i * K + k)]) * wr[size_t(k)];
                            mag += std::fabs(double(a[size_t(i * K + k)]) * wr[size_t(k)]);
                        }
                        worst = std::max(worst, float(std::fabs(c[size_t(i * rows + j)] - ref) / mag));
                    }
                }
            }
            MESSAGE(std::string(dtype_name(type)) << " GEMM: max |gemm - exact| / sum|a w| = " << worst << " (tolerance 1e-6)");
            CHECK(worst <= 1e-6f);
        }
    });
}

TEST_CASE("kernels: LayerNorm equals the scalar loop (double sums), rows split over the pool") {
    for_each_isa([](const KernelTable& kt) {
        float worst = 0;
        for (int64_t dim : {768, 37, 8, 1}) {
            auto x = normal_floats(dim, uint32_t(dim), 3.f);
            for (float& v : x) v += 100.f;  // a large mean: the variance must not cancel
            const auto w = normal_floats(dim, 2), b = normal_floats(dim, 3);
            std::vector<float> out(static_cast<size_t>(dim)), ref(static_cast<size_t>(dim));
            kt.layer_norm(out.data(), x.data(), dim, w.data(), b.data(), 1e-5f);
            kernels_scalar().layer_norm(ref.data(), x.data(), dim, w.data(), b.data(), 1e-5f);
            for (int64_t i = 0; i < dim; ++i)
                worst = std::max(worst, std::fabs(out[size_t(i)] - ref[size_t(i)]) / (1e-6f + std::fabs(ref[size_t(i)])));
        }
        MESSAGE("LayerNorm: max relative |simd - scalar| = " << worst << " (tolerance 1e-6)");
        // measured 0 on all three instruction sets; the bound leaves room for a kernel that
        // sums in another order (float rounding of ~1e-7)
        CHECK(worst <= 1e-6f);
    });
    const int64_t rows = 9, dim = 64;
    const auto x = normal_floats(rows * dim, 4), w = normal_floats(dim, 5), b = normal_floats(dim, 6);
    std::vector<float> one(static_cast<size_t>(rows * dim)), two(static_cast<size_t>(rows * dim));
    ThreadPool pool(2);
    layer_norm_parallel(one.data(), x.data(), rows, dim, w.data(), b.data(), 1e-5f, nullptr);
    layer_norm_parallel(two.data(), x.data(), rows, dim, w.data(), b.data(), 1e-5f, &pool);
    CHECK(one == two);
    std::vector<float> g1 = normal_floats(5000, 7), g2 = g1;
    gelu_parallel(g1.data(), 5000, nullptr);
    gelu_parallel(g2.data(), 5000, &pool);
    CHECK(g1 == g2);
}

TEST_CASE("step handoff: the owner's blocks and what it hands to helpers cover every step exactly once") {
    StepHandoff h;
    int64_t a = -1, b = -1;
    h.reset(10);
    CHECK(!h.ask(&a, &b));  // not begun: no one would answer
    CHECK((h.next(4, 2, &a, &b) && a == 0 && b == 4));
    CHECK((h.next(4, 2, &a, &b) && a == 4 && b == 8));
    CHECK((h.next(4, 2, &a, &b) && a == 8 && b == 10));
    CHECK(!h.next(4, 2, &a, &b));
    CHECK(!h.ask(&a, &b));  // done: refused
    CHECK(h.left() == 0);

    // One owner that works slowly (so that helpers find steps left) and 1 or 3 helpers.
    for (int helpers : {1, 3}) {
        const int64_t n = 20000;
        std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
        for (auto& x : hits) x.store(0);
        std::atomic<int64_t> handed{0};
        std::atomic<bool> owner_done{false};
        h.reset(n);
        auto mark = [&](int64_t from, int64_t to) {
            for (int64_t i = from; i < to; ++i) hits[size_t(i)].fetch_add(1);
        };
        std::vector<std::thread> ts;
        ts.emplace_back([&] {
            int64_t x, y;
            while (h.next(8, 16, &x, &y)) {
                mark(x, y);
                std::this_thread::sleep_for(std::chrono::microseconds(2));
            }
            owner_done = true;
        });
        for (int i = 0; i < helpers; ++i)
            ts.emplace_back([&] {
                int64_t x, y;
                while (!owner_done)
                    if (h.ask(&x, &y)) mark(x, y), handed += y - x;
            });
        for (auto& t : ts) t.join();
        int64_t wrong = 0;
        for (auto& x : hits) wrong += x.load() != 1;
        CAPTURE(helpers);
        CHECK(wrong == 0);
        CHECK(handed.load() > 0);
        MESSAGE(helpers << " helper(s) took " << handed.load() << " of " << n << " steps");
    }
}

TEST_CASE("read bandwidth: the caller's patterns read the whole buffer, once a round, among the probe's own") {
    // minigpt bench adds the decoding kernels' reads to the probe (roofline_bandwidth):
    // each must be given every float of the 1 GiB buffer, split between the threads.
    std::atomic<int64_t> floats{0}, calls{0};
    ReadPattern count = [&](const float* p, int64_t n) {
        floats += n;
        ++calls;
        return p[0];
    };
    const double bw = measure_read_bandwidth(2, 2, {count});
    CHECK(bw > 0);
    CHECK(calls.load() == 2 * 2);                          // 2 rounds x 2 threads
    CHECK(floats.load() == 2 * (int64_t(1) << 30) / 4);   // 2 rounds x 1 GiB of floats
}

TEST_CASE("thread pool: every index once, every element once, many quick jobs, wake-up after sleeping") {
    for (int threads : {1, 2, 3}) {
        ThreadPool pool(threads);
        std::vector<std::atomic<int>> hits(1000);
        pool.parallel_for(1000, 16, [&](int64_t a, int64_t b) {
            for (int64_t i = a; i < b; ++i) hits[size_t(i)]++;
        });
        bool once = true;
        for (auto& h : hits) once &= h.load() == 1;
        CHECK(once);
        std::vector<int> seen(size_t(threads), 0);
        pool.run([&](int index, int count) {
            CHECK(count == threads);
            seen[size_t(index)]++;
        });
        CHECK(std::all_of(seen.begin(), seen.end(), [](int v) { return v == 1; }));
        // Many back-to-back jobs (the per-token pattern): none lost, none doubled.
        std::atomic<int64_t> total{0};
        for (int rep = 0; rep < 20000; ++rep)
            pool.run([&](int index, int) { total += index + 1; });
        CHECK(total.load() == int64_t(20000) * threads * (threads + 1) / 2);
        // After the workers have gone to sleep, a job still reaches all of them.
        std::this_thread::sleep_for(std::chrono::duration<double>(3 * ThreadPool::kSpinSeconds + 0.01));
        std::atomic<int> woke{0};
        pool.run([&](int, int) { woke++; });
        CHECK(woke.load() == threads);
        // A job that runs a job of the same pool: the inner one runs on the calling thread.
        std::atomic<int> inner{0};
        pool.run([&](int, int) { pool.run([&](int, int) { inner++; }); });
        CHECK(inner.load() == threads * threads);
    }
}

TEST_CASE("linear: a batch equals its rows one at a time (q8_0, and f32/f16 up to kSmallBatch rows, bit for bit), "
          "with 1 and 2 threads") {
    // n = 5 takes the small-batch GEMV path for f32/f16 (the same kernel as one row), n = 21 the GEMM.
    for (int64_t n : {int64_t(5), int64_t(21)})
    for (DType type : {DType::F32, DType::F16, DType::Q8_0}) {
        const int64_t rows = 200, cols = 96;
        const bool exact = type == DType::Q8_0 || n <= LinearScratch::kSmallBatch;
        TestMatrix w(type, rows, cols, 21);
        const auto x = normal_floats(n * cols, 22);
        const auto bias_data = normal_floats(rows, 23);
        const Vector bias{rows, bias_data.data()};
        for (int threads : {1, 2}) {
            ThreadPool pool(threads);
            LinearScratch scratch;
            scratch.reserve(cols);
            std::vector<float> batch(static_cast<size_t>(n * rows)), one(static_cast<size_t>(rows));
            linear(batch.data(), x.data(), n, w.m, &bias, scratch, &pool);
            float worst = 0;
            for (int64_t t = 0; t < n; ++t) {
                linear(one.data(), x.data() + t * cols, 1, w.m, &bias, scratch, &pool);
                for (int64_t r = 0; r < rows; ++r)
                    worst = std::max(worst, std::fabs(one[size_t(r)] - batch[size_t(t * rows + r)]));
            }
            const std::string type_name = dtype_name(type);
            CAPTURE(type_name);
            CAPTURE(threads);
            CAPTURE(n);
            MESSAGE(type_name << ", n " << n << ", " << threads << " thread(s): max |batch - one| = " << worst
                              << std::string(exact ? " (must be 0)" : " (tolerance 1e-5)"));
            CHECK(worst <= (exact ? 0.f : 1e-5f));
        }
    }
}

TEST_CASE("attention: keys and values in chunks of the KV cache's layout give the contiguous rows' numbers, bit for bit") {
    // The cache keeps kKVChunk positions of a head together, chunks chunk_stride
    // apart (kv_cache.h). Here the chunks lie 3 chunks apart with NaN between them,
    // so a read outside the rows shows; values continue their sums from chunk to chunk.
    for_each_isa([](const KernelTable&) {
        for (int64_t hd : {64, 24}) {
            const int64_t pos0 = 40, n = 35, T = pos0 + n, ld = 3 * hd;  // 75 positions: 3 chunks, the last partial
            const auto q = normal_floats(n * ld, 41), k = normal_floats(T * hd, 42), v = normal_floats(T * hd, 43);
            const int64_t stride = 3 * kKVChunk * hd, chunks = (T + kKVChunk - 1) / kKVChunk;
            std::vector<float> kc(size_t(chunks * stride), std::numeric_limits<float>::quiet_NaN()), vc = kc;
            for (int64_t j = 0; j < T; ++j)
                for (int64_t d = 0; d < hd; ++d) {
                    const size_t at = size_t(j / kKVChunk * stride + j % kKVChunk * hd + d);
                    kc[at] = k[size_t(j * hd + d)];
                    vc[at] = v[size_t(j * hd + d)];
                }
            std::vector<float> s(size_t(n * T)), z(size_t(n * hd)), s2 = s, z2 = z;
            attention_scores(s.data(), q.data(), ld, HeadRows::contiguous(k.data(), hd), n, pos0, hd);
            attention_softmax(s.data(), n, pos0);
            attention_values(z.data(), hd, s.data(), HeadRows::contiguous(v.data(), hd), n, pos0, hd);
            attention_scores(s2.data(), q.data(), ld, HeadRows{kc.data(), stride}, n, pos0, hd);
            attention_softmax(s2.data(), n, pos0);
            attention_values(z2.data(), hd, s2.data(), HeadRows{vc.data(), stride}, n, pos0, hd);
            CAPTURE(hd);
            CHECK(std::memcmp(s.data(), s2.data(), s.size() * sizeof(float)) == 0);
            CHECK(std::memcmp(z.data(), z2.data(), z.size() * sizeof(float)) == 0);
            // And the contiguous run against the definition, in double (one row).
            const int64_t i = n - 1;
            for (int64_t d = 0; d < hd; d += 7) {
                double want = 0, mag = 0;
                for (int64_t j = 0; j < T; ++j) {
                    want += double(s[size_t(i * T + j)]) * double(v[size_t(j * hd + d)]);
                    mag += std::fabs(double(s[size_t(i * T + j)]) * double(v[size_t(j * hd + d)]));
                }
                CHECK(std::fabs(double(z[size_t(i * hd + d)]) - want) <= 1e-6 * mag);  // float sums of 75 terms
            }
        }
    });
}

TEST_CASE("attention: a batch of query rows equals each row alone, bit for bit; the causal split is balanced") {
    // A batch goes through the rows kernels (blocks of rows over the keys they all see,
    // then row by row); one row alone through the single-row kernels. Head sizes that
    // take the rows kernels' every path (multiples of 64, 32, 16 and 8, and not of 8), and
    // positions that put a block's shared keys mid-chunk.
    for_each_isa([](const KernelTable&) {
        for (int64_t hd : {64, 72, 24, 20})
            for (int64_t pos0 : {5, 37}) {
                const int64_t n = 70, T = pos0 + n, ld = 3 * hd;
                const auto q = normal_floats(n * ld, 31), k = normal_floats(T * hd, 32), v = normal_floats(T * hd, 33);
                ThreadPool pool(2);
                std::vector<float> s(static_cast<size_t>(n * T)), z(static_cast<size_t>(n * hd));
                const HeadRows kr = HeadRows::contiguous(k.data(), hd), vr = HeadRows::contiguous(v.data(), hd);
                attention_scores(s.data(), q.data(), ld, kr, n, pos0, hd, &pool);
                attention_softmax(s.data(), n, pos0, &pool);
                attention_values(z.data(), hd, s.data(), vr, n, pos0, hd, &pool);
                bool identical = true;
                for (int64_t i = 0; i < n; ++i) {
                    const int64_t Ti = pos0 + i + 1;
                    std::vector<float> si(static_cast<size_t>(Ti)), zi(static_cast<size_t>(hd));
                    attention_scores(si.data(), q.data() + i * ld, ld, kr, 1, pos0 + i, hd);
                    attention_softmax(si.data(), 1, pos0 + i);
                    attention_values(zi.data(), hd, si.data(), vr, 1, pos0 + i, hd);
                    identical &= std::memcmp(si.data(), s.data() + i * T, size_t(Ti) * sizeof(float)) == 0;
                    identical &= std::memcmp(zi.data(), z.data() + i * hd, size_t(hd) * sizeof(float)) == 0;
                    for (int64_t j = Ti; j < T; ++j) identical &= s[size_t(i * T + j)] == 0.f;
                }
                CAPTURE(hd);
                CAPTURE(pos0);
                CHECK(identical);
            }
    });
    // The split: contiguous, covering, and within one 8-row block of equal work.
    for (int count : {2, 3}) {
        int64_t prev = 0;
        double work[3] = {0, 0, 0};
        for (int t = 0; t < count; ++t) {
            int64_t b, e;
            causal_rows(512, 0, t, count, &b, &e);
            CHECK(b == prev);
            prev = e;
            for (int64_t i = b; i < e; ++i) work[t] += double(i + 1);
        }
        CHECK(prev == 512);
        for (int t = 0; t < count; ++t) CHECK(std::fabs(work[t] - 512.0 * 513 / 2 / count) <= 8 * 512);
    }
}
