// Kernel dispatch, the scalar twins of every kernel (the tests' reference and
// the fallback on CPUs without AVX2), and the matrix-level entry points.
#include "kernels/kernels.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "format/f16.h"
#include "util/step_handoff.h"
#include "util/thread_pool.h"

#if defined(__x86_64__)
#include <cpuid.h>
#endif

namespace minigpt {

// Defined in avx512.cpp / avx2.cpp (null off x86-64).
const KernelTable* kernel_table_avx512();
const KernelTable* kernel_table_avx2();

namespace {

template <class At>
void gemv_scalar(float* y, const uint8_t* w, int64_t ld, int64_t rows, int64_t cols, const float* x, At at) {
    for (int64_t r = 0; r < rows; ++r) {
        const uint8_t* row = w + r * ld;
        float s = 0;
        for (int64_t i = 0; i < cols; ++i) s += at(row, i) * x[i];
        y[r] = s;
    }
}

void gemv_f32_scalar(float* y, const uint8_t* w, int64_t ld, int64_t rows, const float* x, int64_t cols) {
    gemv_scalar(y, w, ld, rows, cols, x, [](const uint8_t* p, int64_t i) { return reinterpret_cast<const float*>(p)[i]; });
}

void gemv_f16_scalar(float* y, const uint8_t* w, int64_t ld, int64_t rows, const float* x, int64_t cols) {
    gemv_scalar(y, w, ld, rows, cols, x,
                [](const uint8_t* p, int64_t i) { return f16_to_f32(reinterpret_cast<const uint16_t*>(p)[i]); });
}

// The same math as the SIMD kernels: exact int32 dot per block, scaled by d_w * d_x.
void gemm_q8_0_scalar(float* y, int64_t ldy, const uint8_t* w, int64_t ld, int64_t rows, const QuantizedVector* xs,
                      int64_t n) {
    for (int64_t t = 0; t < n; ++t)
        for (int64_t r = 0; r < rows; ++r) {
            const QuantizedVector& x = xs[t];
            const BlockQ8_0* b = reinterpret_cast<const BlockQ8_0*>(w + r * ld);
            float s = 0;
            for (int64_t k = 0; k < x.n_blocks; ++k) {
                int32_t dot = 0;
                for (int j = 0; j < kQ8_0Block; ++j) dot += int32_t(b[k].q[j]) * int32_t(x.q[k * kQ8_0Block + j]);
                s += (f16_to_f32(b[k].scale) * x.d[k]) * float(dot);
            }
            y[t * ldy + r] = s;
        }
}

// The four parts' rows of each step, one row at a time: each row as the kernels above.
void gemv_f32_parts_scalar(float* y, const uint8_t* w, int64_t ld, int64_t part, int64_t steps, const float* x,
                           int64_t cols) {
    for (int64_t r = 0; r < steps; ++r)
        for (int s = 0; s < kGemvParts; ++s) gemv_f32_scalar(y + r + s * part, w + (r + s * part) * ld, ld, 1, x, cols);
}
void gemv_f16_parts_scalar(float* y, const uint8_t* w, int64_t ld, int64_t part, int64_t steps, const float* x,
                           int64_t cols) {
    for (int64_t r = 0; r < steps; ++r)
        for (int s = 0; s < kGemvParts; ++s) gemv_f16_scalar(y + r + s * part, w + (r + s * part) * ld, ld, 1, x, cols);
}
void gemv_q8_0_parts_scalar(float* y, const uint8_t* w, int64_t ld, int64_t part, int64_t steps,
                            const QuantizedVector* x) {
    for (int64_t r = 0; r < steps; ++r)
        for (int s = 0; s < kGemvParts; ++s) gemm_q8_0_scalar(y + r + s * part, 0, w + (r + s * part) * ld, ld, 1, x, 1);
}

void quantize_q8_0_scalar(const float* x, int64_t n, QuantizedVector& out) {
    const int64_t nb = n / kQ8_0Block;
    for (int64_t b = 0; b < nb; ++b) {
        const float* xb = x + b * kQ8_0Block;
        float amax = 0;
        for (int j = 0; j < kQ8_0Block; ++j) amax = std::fmax(amax, std::fabs(xb[j]));
        const float d = amax / 127.f, id = d != 0.f ? 1.f / d : 0.f;
        out.d[b] = f16_to_f32(f32_to_f16(d));
        int8_t* q = out.q + b * kQ8_0Block;
        for (int j = 0; j < kQ8_0Block; ++j) {
            const float v = std::nearbyint(xb[j] * id);  // nearest even, as cvtps_epi32
            q[j] = int8_t(v > 127.f ? 127 : v < -128.f ? -128 : int(v));
        }
        for (int g = 0; g < 8; ++g)
            out.offset[b * 8 + g] = -128 * (int32_t(q[4 * g]) + q[4 * g + 1] + q[4 * g + 2] + q[4 * g + 3]);
    }
    out.n_blocks = nb;
}

void dequantize_f16_scalar(float* out, const uint8_t* row, int64_t n) {
    const uint16_t* p = reinterpret_cast<const uint16_t*>(row);
    for (int64_t i = 0; i < n; ++i) out[i] = f16_to_f32(p[i]);
}

void dequantize_q8_0_scalar(float* out, const uint8_t* row, int64_t n) {
    const BlockQ8_0* b = reinterpret_cast<const BlockQ8_0*>(row);
    for (int64_t k = 0; k < n / kQ8_0Block; ++k) {
        const float d = f16_to_f32(b[k].scale);
        for (int j = 0; j < kQ8_0Block; ++j) out[k * kQ8_0Block + j] = d * float(b[k].q[j]);
    }
}

void attn_scores_scalar(float* s, const float* q, const float* k, int64_t T, int64_t hd, float scale) {
    for (int64_t j = 0; j < T; ++j) {
        float v = 0;
        for (int64_t d = 0; d < hd; ++d) v += q[d] * k[j * hd + d];
        s[j] = v * scale;
    }
}

void attn_values_scalar(float* z, const float* p, const float* v, int64_t T, int64_t hd, bool accumulate) {
    if (!accumulate)
        for (int64_t d = 0; d < hd; ++d) z[d] = 0.f;
    for (int64_t j = 0; j < T; ++j)
        for (int64_t d = 0; d < hd; ++d) z[d] += p[j] * v[j * hd + d];
}

// The scalar twins of the rows kernels: row after row.
void attn_scores_rows_scalar(float* s, int64_t lds, const float* q, int64_t ldq, int64_t rows, const float* k, int64_t T,
                             int64_t hd, float scale) {
    for (int64_t r = 0; r < rows; ++r) attn_scores_scalar(s + r * lds, q + r * ldq, k, T, hd, scale);
}

void attn_values_rows_scalar(float* z, int64_t ldz, const float* p, int64_t ldp, int64_t rows, const float* v, int64_t T,
                             int64_t hd, bool accumulate) {
    for (int64_t r = 0; r < rows; ++r) attn_values_scalar(z + r * ldz, p + r * ldp, v, T, hd, accumulate);
}

void softmax_scalar(float* x, int64_t n) {
    float mx = -std::numeric_limits<float>::infinity();
    for (int64_t i = 0; i < n; ++i) mx = x[i] > mx ? x[i] : mx;
    double sum = 0;
    for (int64_t i = 0; i < n; ++i) sum += (x[i] = std::exp(x[i] - mx));
    const float inv = float(1.0 / sum);
    for (int64_t i = 0; i < n; ++i) x[i] *= inv;
}

void gelu_scalar(float* x, int64_t n) {
    const float k = 0.7978845608028654f;  // sqrt(2/pi)
    for (int64_t i = 0; i < n; ++i) {
        const float v = x[i];
        x[i] = 0.5f * v * (1.0f + std::tanh(k * (v + 0.044715f * v * v * v)));
    }
}

void layer_norm_scalar(float* out, const float* x, int64_t n, const float* w, const float* b, float eps) {
    double sum = 0;
    for (int64_t i = 0; i < n; ++i) sum += x[i];
    const double mean = sum / double(n);
    double var = 0;
    for (int64_t i = 0; i < n; ++i) {
        const double d = x[i] - mean;
        var += d * d;
    }
    const float inv = float(1.0 / std::sqrt(var / double(n) + double(eps)));
    const float m = float(mean);
    for (int64_t i = 0; i < n; ++i) out[i] = (x[i] - m) * inv * w[i] + b[i];
}

const KernelTable kScalar = {KernelIsa::Scalar,     "scalar",           gemv_f32_scalar,    gemv_f16_scalar,
                             gemm_q8_0_scalar,      quantize_q8_0_scalar, dequantize_f16_scalar,
                             dequantize_q8_0_scalar, attn_scores_scalar, attn_values_scalar, softmax_scalar,
                             gelu_scalar,           nullptr,            layer_norm_scalar,
                             attn_scores_rows_scalar, attn_values_rows_scalar, gemv_f32_parts_scalar,
                             gemv_f16_parts_scalar,   gemv_q8_0_parts_scalar};

#if defined(__x86_64__)
// F16C from CPUID leaf 1 (clang 14's __builtin_cpu_supports does not know "f16c").
bool cpu_has_f16c() {
    unsigned a, b, c, d;
    return __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C) != 0;
}
#endif

bool cpu_has(KernelIsa isa) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    switch (isa) {
        case KernelIsa::Avx512:
            return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                   __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
                   __builtin_cpu_supports("avx512vnni");
        case KernelIsa::Avx2:
            return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && cpu_has_f16c();
        case KernelIsa::Scalar:
            return true;
    }
    return false;
#else
    return isa == KernelIsa::Scalar;
#endif
}

const KernelTable* best_table() {
    for (KernelIsa isa : {KernelIsa::Avx512, KernelIsa::Avx2})
        if (const KernelTable* t = kernels_for(isa)) return t;
    return &kScalar;
}

// The table force_kernel_isa() chose, else null (then MINIGPT_ISA's or the best).
// Atomic: the pool's threads read it while a bench may switch tables between runs.
std::atomic<const KernelTable*> g_active{nullptr};

const char* isa_name(KernelIsa isa) {
    return isa == KernelIsa::Avx512 ? "avx512" : isa == KernelIsa::Avx2 ? "avx2" : "scalar";
}

// The table MINIGPT_ISA names, or the best one when it is unset or empty.
const KernelTable* initial_table() {
    const char* env = std::getenv("MINIGPT_ISA");
    if (!env || !*env) return best_table();
    const KernelIsa isa = parse_kernel_isa(env, "MINIGPT_ISA");
    const KernelTable* t = kernels_for(isa);
    if (!t)
        throw std::runtime_error(std::string("MINIGPT_ISA=") + env + ": this CPU or build cannot run the " +
                                 isa_name(isa) + " kernels (unset it to use the best available)");
    return t;
}

// Room for a quantized activation vector: on the stack up to kStackCols
// columns (every GPT-2 size), on the heap beyond.
class QuantizedScratch {
public:
    explicit QuantizedScratch(int64_t cols) {
        const int64_t nb = cols / kQ8_0Block;
        if (cols <= kStackCols) {
            v_.q = q_;
            v_.d = d_;
            v_.offset = off_;
        } else {
            heap_q_.resize(size_t(nb * kQ8_0Block));
            heap_d_.resize(size_t(nb));
            heap_off_.resize(size_t(nb * 8));
            v_.q = heap_q_.data(), v_.d = heap_d_.data(), v_.offset = heap_off_.data();
        }
        v_.n_blocks = nb;
    }
    QuantizedVector& vec() { return v_; }

private:
    static constexpr int64_t kStackCols = 8192;
    alignas(64) int8_t q_[kStackCols];
    alignas(64) float d_[kStackCols / kQ8_0Block];
    alignas(64) int32_t off_[kStackCols / 4];
    std::vector<int8_t> heap_q_;
    std::vector<float> heap_d_;
    std::vector<int32_t> heap_off_;
    QuantizedVector v_;
};

void gemv_with(const KernelTable& kt, float* y, const Matrix& w, const float* x, int64_t r0, int64_t r1,
               const QuantizedVector* xq) {
    const int64_t ld = w.row_bytes();
    switch (w.type) {
        case DType::F32: kt.gemv_f32(y + r0, w.row(r0), ld, r1 - r0, x, w.cols); return;
        case DType::F16: kt.gemv_f16(y + r0, w.row(r0), ld, r1 - r0, x, w.cols); return;
        case DType::Q8_0: kt.gemm_q8_0(y + r0, 0, w.row(r0), ld, r1 - r0, xq, 1); return;
        case DType::BF16: break;
    }
    for (int64_t r = r0; r < r1; ++r) {  // bf16: rare, kept scalar
        const uint16_t* p = reinterpret_cast<const uint16_t*>(w.row(r));
        float s = 0;
        for (int64_t i = 0; i < w.cols; ++i) {
            uint32_t bits = uint32_t(p[i]) << 16;
            float v;
            std::memcpy(&v, &bits, 4);
            s += v * x[i];
        }
        y[r] = s;
    }
}

}  // namespace

void gemv_rows_with(const KernelTable& kt, float* y, const Matrix& w, const float* x, int64_t r0, int64_t r1) {
    if (w.type == DType::Q8_0) {
        QuantizedScratch qs(w.cols);
        kt.quantize_q8_0(x, w.cols, qs.vec());
        gemv_with(kt, y, w, x, r0, r1, &qs.vec());
    } else {
        gemv_with(kt, y, w, x, r0, r1, nullptr);
    }
}

const KernelTable& kernels_scalar() { return kScalar; }

const KernelTable* kernels_for(KernelIsa isa) {
    if (!cpu_has(isa)) return nullptr;
    switch (isa) {
        case KernelIsa::Avx512: return kernel_table_avx512();
        case KernelIsa::Avx2: return kernel_table_avx2();
        case KernelIsa::Scalar: return &kScalar;
    }
    return nullptr;
}

KernelIsa parse_kernel_isa(const std::string& name, const std::string& what) {
    for (KernelIsa isa : {KernelIsa::Avx512, KernelIsa::Avx2, KernelIsa::Scalar})
        if (name == isa_name(isa)) return isa;
    throw std::runtime_error(what + "=" + name + ": unknown instruction set (avx512, avx2 or scalar)");
}

const KernelTable& kernels() {
    // Initialised on first use (MINIGPT_ISA or the best table); a bad MINIGPT_ISA
    // throws here, and again at the next call.
    static const KernelTable* initial = initial_table();
    const KernelTable* forced = g_active.load(std::memory_order_relaxed);
    return forced ? *forced : *initial;
}

void force_kernel_isa(KernelIsa isa) {
    const KernelTable* t = kernels_for(isa);
    if (!t) throw std::runtime_error(std::string("kernels: this CPU or build cannot run the ") + isa_name(isa) +
                                     " kernels");
    g_active.store(t, std::memory_order_relaxed);
}

const char* kernel_isa() { return kernels().name; }

void gemv_rows(float* y, const Matrix& w, const float* x, int64_t r0, int64_t r1) {
    gemv_rows_with(kernels(), y, w, x, r0, r1);
}

void gemv_rows_scalar(float* y, const Matrix& w, const float* x, int64_t r0, int64_t r1) {
    gemv_rows_with(kScalar, y, w, x, r0, r1);
}

namespace {

// One task's share of a decoding GEMV: rows [r0, r0 + kGemvParts * part) read as
// kGemvParts parts side by side, `part` steps shared through `steps`, and the few
// rows after them up to r1.
struct alignas(64) GemvShare {
    StepHandoff steps;
    int64_t r0 = 0, r1 = 0, part = 0;
};

// Bytes of W an owner reads between looks at a request (a block: a kernel call),
// and the fewest blocks left that it halves for a helper: each handed-over run
// starts new streams, which cost more than they win below that.
constexpr int64_t kBlockBytes = 64 * 1024, kMinGiveBlocks = 4;

}  // namespace

void gemv(float* y, const Matrix& w, const float* x, const float* bias, ThreadPool* pool) {
    const KernelTable& kt = kernels();
    // q8_0: the activation is quantized once, here, and shared by every thread.
    QuantizedScratch qs(w.type == DType::Q8_0 ? w.cols : 0);
    if (w.type == DType::Q8_0) kt.quantize_q8_0(x, w.cols, qs.vec());
    auto add_bias = [&](int64_t r0, int64_t r1) {
        if (bias)
            for (int64_t r = r0; r < r1; ++r) y[r] += bias[r];
    };
    const int threads = pool ? pool->size() : 1;
    if (threads == 1 || w.type == DType::BF16) {
        gemv_with(kt, y, w, x, 0, w.rows, &qs.vec());
        add_bias(0, w.rows);
        return;
    }
    // One range of rows per task (as many as threads), each a multiple of 16 rows (its
    // outputs on cache lines of its own) and read as kGemvParts streams in order. A
    // thread done with its range asks another for the back half of what it has left
    // (StepHandoff). On our 2-vCPU VMs, with ranges alone, one thread waited for the
    // other 15-45 % of the time of one token's products, whichever thread it was from
    // one run to the next; smaller ranges claimed in turn cost more in stream ramp-ups
    // than they won in balance (64-row pieces: 55 against 66 GB/s). Every row's number
    // is the kernel's whichever thread computes it (gemv_*_parts).
    static thread_local std::unique_ptr<GemvShare[]> shares;
    static thread_local int capacity = 0;
    if (capacity < threads) shares.reset(new GemvShare[size_t(threads)]), capacity = threads;
    for (int t = 0; t < threads; ++t) {
        GemvShare& s = shares[size_t(t)];
        ThreadPool::chunk(w.rows, 16, t, threads, &s.r0, &s.r1);
        s.part = (s.r1 - s.r0) / kGemvParts;
        s.steps.reset(s.part);
    }
    const int64_t ld = w.row_bytes();
    const int64_t block = std::max<int64_t>(1, kBlockBytes / (kGemvParts * ld)), min_give = kMinGiveBlocks * block;
    auto run_steps = [&](const GemvShare& s, int64_t a, int64_t b) {
        const int64_t r = s.r0 + a;
        switch (w.type) {
            case DType::F32: kt.gemv_f32_parts(y + r, w.row(r), ld, s.part, b - a, x, w.cols); break;
            case DType::F16: kt.gemv_f16_parts(y + r, w.row(r), ld, s.part, b - a, x, w.cols); break;
            case DType::Q8_0: kt.gemv_q8_0_parts(y + r, w.row(r), ld, s.part, b - a, &qs.vec()); break;
            case DType::BF16: break;
        }
        for (int p = 0; p < kGemvParts; ++p) add_bias(r + p * s.part, r + p * s.part + (b - a));
    };
    GemvShare* all = shares.get();
    pool->for_each(threads, [&](int64_t t, int) {
        GemvShare& own = all[t];
        const int64_t tail = own.r0 + kGemvParts * own.part;
        gemv_with(kt, y, w, x, tail, own.r1, &qs.vec());
        add_bias(tail, own.r1);
        int64_t a, b;
        while (own.steps.next(block, min_give, &a, &b)) run_steps(own, a, b);
        for (;;) {  // then help the share with the most steps left, while one gives some
            GemvShare* most = nullptr;
            for (int o = 0; o < threads; ++o)
                if (o != t && (!most || all[o].steps.left() > most->steps.left())) most = &all[o];
            if (most->steps.left() < min_give || !most->steps.ask(&a, &b)) break;
            run_steps(*most, a, b);
        }
    });
}

void gelu_parallel(float* x, int64_t n, ThreadPool* pool) {
    const KernelTable& kt = kernels();
    // Chunks of 1024 (a multiple of every vector width) unless that leaves a thread idle.
    if (pool) pool->parallel_for(n, 1024, [&](int64_t a, int64_t b) { kt.gelu(x + a, b - a); });
    else kt.gelu(x, n);
}

void layer_norm_parallel(float* out, const float* x, int64_t rows, int64_t dim, const float* w, const float* b, float eps,
                         ThreadPool* pool) {
    const KernelTable& kt = kernels();
    auto body = [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r) kt.layer_norm(out + r * dim, x + r * dim, dim, w, b, eps);
    };
    if (pool && rows > 1) pool->parallel_for(rows, 1, body);
    else body(0, rows);
}

void dequantize_row(float* out, const Matrix& w, int64_t r) {
    const KernelTable& kt = kernels();
    switch (w.type) {
        case DType::F32: std::memcpy(out, w.row(r), size_t(w.cols) * sizeof(float)); return;
        case DType::F16: kt.dequantize_f16(out, w.row(r), w.cols); return;
        case DType::Q8_0: kt.dequantize_q8_0(out, w.row(r), w.cols); return;
        case DType::BF16: break;
    }
    const uint16_t* p = reinterpret_cast<const uint16_t*>(w.row(r));
    for (int64_t i = 0; i < w.cols; ++i) {
        uint32_t bits = uint32_t(p[i]) << 16;
        std::memcpy(&out[i], &bits, 4);
    }
}

}  // namespace minigpt
