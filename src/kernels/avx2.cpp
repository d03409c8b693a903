// AVX2 + FMA + F16C kernels (no AVX-512, no VNNI), compiled for those
// instructions whatever the build flags; kernels.cpp selects them on a CPU
// without AVX-512, and the tests force them on one with it. Internal linkage
// only, for the reason given in avx512.cpp.
#if defined(__x86_64__)
#pragma GCC target("avx2,fma,f16c")
#include <immintrin.h>
#endif

#include "kernels/kernels.h"

namespace minigpt {

#if defined(__x86_64__)
namespace {

inline float hsum(__m256 v) {
    __m128 q = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    q = _mm_add_ps(q, _mm_movehl_ps(q, q));
    q = _mm_add_ss(q, _mm_movehdup_ps(q));
    return _mm_cvtss_f32(q);
}

inline float hmax(__m256 v) {
    __m128 q = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    q = _mm_max_ps(q, _mm_movehl_ps(q, q));
    q = _mm_max_ss(q, _mm_movehdup_ps(q));
    return _mm_cvtss_f32(q);
}

inline float h2f(uint16_t h) { return _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(h))); }
inline uint16_t f2h(float f) { return uint16_t(_mm_extract_epi16(_mm_cvtps_ph(_mm_set_ss(f), 0), 0)); }

// How far ahead of its reads a matrix-vector stream prefetches (as avx512.cpp).
constexpr int64_t kAheadBytes = 2048;

struct F32Row {
    static constexpr int64_t kBytes = 4;
    static __m256 load(const void* p, int64_t i) { return _mm256_loadu_ps(static_cast<const float*>(p) + i); }
    static float at(const void* p, int64_t i) { return static_cast<const float*>(p)[i]; }
};
struct F16Row {
    static constexpr int64_t kBytes = 2;
    static __m256 load(const void* p, int64_t i) {
        return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(p) + i)));
    }
    static float at(const void* p, int64_t i) { return h2f(static_cast<const uint16_t*>(p)[i]); }
};

// The dot products of S rows with x, the rows `stride` rows apart (y likewise), in
// lockstep over the columns, two accumulators per row (columns i..i+7 and i+8..i+15
// of every 16), then the 8-column and scalar tails: a row's number does not depend
// on S.
template <class Row, int S>
inline void dot_rows(float* y, const uint8_t* w, int64_t ld, int64_t stride, const float* x, int64_t cols) {
    const int64_t n16 = cols & ~int64_t(15), n8 = cols & ~int64_t(7);
    const uint8_t* wr[S];
    __m256 a[S], b[S];
    for (int s = 0; s < S; ++s) wr[s] = w + s * stride * ld, a[s] = b[s] = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i < n16; i += 16) {
        const __m256 x0 = _mm256_loadu_ps(x + i), x1 = _mm256_loadu_ps(x + i + 8);
        for (int s = 0; s < S; ++s) {
            // 16 f32 columns span one cache line (f16: half of one). Non-temporal, as in
            // avx512.cpp: decoding 128 tokens in one process, alternating with T0 (two sets
            // of 10-12 rounds), two threads read 3-6.5 % faster (f32) and 1-3 % (f16); one
            // thread, and 5- and 16-token prompts through this kernel, within 2.5 %.
            _mm_prefetch(reinterpret_cast<const char*>(wr[s] + i * Row::kBytes + kAheadBytes), _MM_HINT_NTA);
            a[s] = _mm256_fmadd_ps(Row::load(wr[s], i), x0, a[s]);
            b[s] = _mm256_fmadd_ps(Row::load(wr[s], i + 8), x1, b[s]);
        }
    }
    for (; i < n8; i += 8) {
        const __m256 x0 = _mm256_loadu_ps(x + i);
        for (int s = 0; s < S; ++s) a[s] = _mm256_fmadd_ps(Row::load(wr[s], i), x0, a[s]);
    }
    for (int s = 0; s < S; ++s) {
        float sum = hsum(_mm256_add_ps(a[s], b[s]));
        for (int64_t k = i; k < cols; ++k) sum += Row::at(wr[s], k) * x[k];
        y[s * stride] = sum;
    }
}

// The rows cut into four parts read side by side, four streams in order through
// memory, as the AVX-512 kernel reads them (avx512.cpp says why).
template <class Row>
void gemv_float_parts(float* y, const uint8_t* w, int64_t ld, int64_t part, int64_t steps, const float* x, int64_t cols) {
    for (int64_t r = 0; r < steps; ++r) dot_rows<Row, kGemvParts>(y + r, w + r * ld, ld, part, x, cols);
}
template <class Row>
void gemv_float(float* y, const uint8_t* w, int64_t ld, int64_t rows, const float* x, int64_t cols) {
    const int64_t part = rows / kGemvParts;
    gemv_float_parts<Row>(y, w, ld, part, part, x, cols);
    for (int64_t r = kGemvParts * part; r < rows; ++r) dot_rows<Row, 1>(y + r, w + r * ld, ld, 0, x, cols);
}
void gemv_f32_parts(float* y, const uint8_t* w, int64_t ld, int64_t part, int64_t steps, const float* x, int64_t cols) {
    gemv_float_parts<F32Row>(y, w, ld, part, steps, x, cols);
}
void gemv_f16_parts(float* y, const uint8_t* w, int64_t ld, int64_t part, int64_t steps, const float* x, int64_t cols) {
    gemv_float_parts<F16Row>(y, w, ld, part, steps, x, cols);
}

void gemv_f32(float* y, const uint8_t* w, int64_t ld, int64_t rows, const float* x, int64_t cols) {
    gemv_float<F32Row>(y, w, ld, rows, x, cols);
}
void gemv_f16(float* y, const uint8_t* w, int64_t ld, int64_t rows, const float* x, int64_t cols) {
    gemv_float<F16Row>(y, w, ld, rows, x, cols);
}

// q8_0 · q8_0 as ggml does it on AVX2: maddubs(|x|, w * sign(x)) gives int16
// sums of pairs (at most 2*127*128, no saturation), madd with ones widens them
// to int32 sums of 4; each block's 8 lanes are scaled by d_w * d_x.
// (A weight of -128, which q8_0 quantizers never write, would be negated wrongly.)
// R rows x NT vectors per call, the rows `row_step` bytes apart (their outputs
// y_step apart), each prefetched `ahead` bytes ahead of its reads when that is not
// 0. Every output takes the same instructions in the same order whatever R, NT and
// the steps are (bit-identical prefill and decoding).
template <int R, int NT>
void q8_tile(float* y, int64_t ldy, int64_t y_step, const uint8_t* w, int64_t row_step, const QuantizedVector* x,
             int64_t ahead) {
    const int64_t nb = x[0].n_blocks;
    const __m256i ones = _mm256_set1_epi16(1);
    const BlockQ8_0* b[R];
    for (int r = 0; r < R; ++r) b[r] = reinterpret_cast<const BlockQ8_0*>(w + r * row_step);
    __m256 acc[R][NT];
    for (int r = 0; r < R; ++r)
        for (int t = 0; t < NT; ++t) acc[r][t] = _mm256_setzero_ps();
    for (int64_t k = 0; k < nb; ++k) {
        __m256i xq[NT], xa[NT];
        for (int t = 0; t < NT; ++t) {
            xq[t] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[t].q + 32 * k));
            xa[t] = _mm256_sign_epi8(xq[t], xq[t]);
        }
        if (ahead)
            for (int r = 0; r < R; ++r) _mm_prefetch(reinterpret_cast<const char*>(b[r] + k) + ahead, _MM_HINT_T0);
        for (int r = 0; r < R; ++r) {
            const __m256i wq = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b[r][k].q));
            const float dw = h2f(b[r][k].scale);
            for (int t = 0; t < NT; ++t) {
                const __m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(xa[t], _mm256_sign_epi8(wq, xq[t])), ones);
                acc[r][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(dw * x[t].d[k]), acc[r][t]);
            }
        }
    }
    for (int r = 0; r < R; ++r)
        for (int t = 0; t < NT; ++t) y[t * ldy + r * y_step] = hsum(acc[r][t]);
}

// Decoding (one vector) reads the rows as four streams, as gemv_float does (the rows
// cut into four parts read side by side, one row of each in lockstep: four
// independent sums), each prefetched kAheadBytes ahead. One row at a time, one
// stream (what this was), left each block's sum waiting on the last and read one
// token's q8_0 matrices at 0.53x the AVX-512 kernel's speed with two threads, 0.77x
// with one (decoding in one process, the two alternating, 8 rounds).
void gemv_q8_0_parts(float* y, const uint8_t* w, int64_t ld, int64_t part, int64_t steps, const QuantizedVector* x) {
    for (int64_t r = 0; r < steps; ++r) q8_tile<kGemvParts, 1>(y + r, 0, part, w + r * ld, part * ld, x, kAheadBytes);
}

// A batch takes 4 adjacent rows per pass, reused from cache for its vectors.
template <int NT>
void q8_rows(float* y, int64_t ldy, const uint8_t* w, int64_t ld, int64_t rows, const QuantizedVector* x) {
    int64_t r = 0;
    if (NT > 1) {
        for (; r + 4 <= rows; r += 4) q8_tile<4, NT>(y + r, ldy, 1, w + r * ld, ld, x, 0);
    } else {
        const int64_t part = rows / kGemvParts;
        gemv_q8_0_parts(y, w, ld, part, part, x);
        r = kGemvParts * part;
    }
    for (; r < rows; ++r) q8_tile<1, NT>(y + r, ldy, 1, w + r * ld, ld, x, 0);
}

void gemm_q8_0(float* y, int64_t ldy, const uint8_t* w, int64_t ld, int64_t rows, const QuantizedVector* x, int64_t n) {
    int64_t t = 0;
    for (; t + 2 <= n; t += 2) q8_rows<2>(y + t * ldy, ldy, w, ld, rows, x + t);
    if (t < n) q8_rows<1>(y + t * ldy, ldy, w, ld, rows, x + t);
}

void quantize_q8_0(const float* x, int64_t n, QuantizedVector& out) {
    const int64_t nb = n / kQ8_0Block;
    const __m256 sign = _mm256_set1_ps(-0.f);
    const __m256i ones8 = _mm256_set1_epi8(1), ones16 = _mm256_set1_epi16(1);
    for (int64_t b = 0; b < nb; ++b) {
        const float* xb = x + 32 * b;
        const __m256 v0 = _mm256_loadu_ps(xb), v1 = _mm256_loadu_ps(xb + 8), v2 = _mm256_loadu_ps(xb + 16),
                     v3 = _mm256_loadu_ps(xb + 24);
        const __m256 m = _mm256_max_ps(_mm256_max_ps(_mm256_andnot_ps(sign, v0), _mm256_andnot_ps(sign, v1)),
                                       _mm256_max_ps(_mm256_andnot_ps(sign, v2), _mm256_andnot_ps(sign, v3)));
        const float amax = hmax(m);
        const float d = amax / 127.f, id = d != 0.f ? 1.f / d : 0.f;
        out.d[b] = h2f(f2h(d));
        const __m256 vid = _mm256_set1_ps(id);
        // cvtps rounds to nearest even (default MXCSR mode), as the scalar twin's nearbyint.
        const __m256i i0 = _mm256_cvtps_epi32(_mm256_mul_ps(v0, vid)), i1 = _mm256_cvtps_epi32(_mm256_mul_ps(v1, vid));
        const __m256i i2 = _mm256_cvtps_epi32(_mm256_mul_ps(v2, vid)), i3 = _mm256_cvtps_epi32(_mm256_mul_ps(v3, vid));
        // packs work per 128-bit lane; the permute puts the 32 bytes back in order.
        const __m256i w01 = _mm256_packs_epi32(i0, i1), w23 = _mm256_packs_epi32(i2, i3);
        const __m256i q = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(w01, w23), _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(out.q + 32 * b), q);
        const __m256i sums = _mm256_madd_epi16(_mm256_maddubs_epi16(ones8, q), ones16);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(out.offset + 8 * b),
                            _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(sums, 7)));
    }
    out.n_blocks = nb;
}

void dequantize_f16(float* out, const uint8_t* row, int64_t n) {
    const uint16_t* p = reinterpret_cast<const uint16_t*>(row);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(out + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i))));
    for (; i < n; ++i) out[i] = h2f(p[i]);
}

void dequantize_q8_0(float* out, const uint8_t* row, int64_t n) {
    const BlockQ8_0* b = reinterpret_cast<const BlockQ8_0*>(row);
    for (int64_t k = 0; k < n / kQ8_0Block; ++k) {
        const __m256 d = _mm256_set1_ps(h2f(b[k].scale));
        for (int j = 0; j < 4; ++j) {
            const __m128i q = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(b[k].q + 8 * j));
            _mm256_storeu_ps(out + 32 * k + 8 * j, _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q))));
        }
    }
}

void attn_scores(float* s, const float* q, const float* k, int64_t T, int64_t hd, float scale) {
    const int64_t n8 = hd & ~int64_t(7);
    for (int64_t j = 0; j < T; ++j) {
        const float* kj = k + j * hd;
        __m256 a = _mm256_setzero_ps(), b = a;
        int64_t d = 0;
        for (; d + 16 <= n8; d += 16) {
            a = _mm256_fmadd_ps(_mm256_loadu_ps(q + d), _mm256_loadu_ps(kj + d), a);
            b = _mm256_fmadd_ps(_mm256_loadu_ps(q + d + 8), _mm256_loadu_ps(kj + d + 8), b);
        }
        for (; d < n8; d += 8) a = _mm256_fmadd_ps(_mm256_loadu_ps(q + d), _mm256_loadu_ps(kj + d), a);
        float v = hsum(_mm256_add_ps(a, b));
        for (; d < hd; ++d) v += q[d] * kj[d];
        s[j] = v * scale;
    }
}

void attn_values(float* z, const float* p, const float* v, int64_t T, int64_t hd, bool accumulate) {
    auto start = [&](int64_t d) { return accumulate ? _mm256_loadu_ps(z + d) : _mm256_setzero_ps(); };
    int64_t d = 0;
    for (; d + 32 <= hd; d += 32) {
        __m256 a0 = start(d), a1 = start(d + 8), a2 = start(d + 16), a3 = start(d + 24);
        for (int64_t j = 0; j < T; ++j) {
            const __m256 pj = _mm256_set1_ps(p[j]);
            const float* vj = v + j * hd + d;
            a0 = _mm256_fmadd_ps(pj, _mm256_loadu_ps(vj), a0);
            a1 = _mm256_fmadd_ps(pj, _mm256_loadu_ps(vj + 8), a1);
            a2 = _mm256_fmadd_ps(pj, _mm256_loadu_ps(vj + 16), a2);
            a3 = _mm256_fmadd_ps(pj, _mm256_loadu_ps(vj + 24), a3);
        }
        _mm256_storeu_ps(z + d, a0);
        _mm256_storeu_ps(z + d + 8, a1);
        _mm256_storeu_ps(z + d + 16, a2);
        _mm256_storeu_ps(z + d + 24, a3);
    }
    for (; d + 8 <= hd; d += 8) {
        __m256 a = start(d);
        for (int64_t j = 0; j < T; ++j) a = _mm256_fmadd_ps(_mm256_set1_ps(p[j]), _mm256_loadu_ps(v + j * hd + d), a);
        _mm256_storeu_ps(z + d, a);
    }
    for (; d < hd; ++d) {
        float a = accumulate ? z[d] : 0.f;
        for (int64_t j = 0; j < T; ++j) a += p[j] * v[j * hd + d];
        z[d] = a;
    }
}

// hsum of each of the four registers, as [hsum(v0), hsum(v1), hsum(v2), hsum(v3)]:
// hsum's additions, pair for pair, for four sums at once.
inline __m128 hsum4(__m256 v0, __m256 v1, __m256 v2, __m256 v3) {
    // [v0 q0..3 | v1 q0..3], [v2 | v3]: q_i = lane i + lane i + 4
    const __m256 w0 = _mm256_add_ps(_mm256_permute2f128_ps(v0, v1, 0x20), _mm256_permute2f128_ps(v0, v1, 0x31));
    const __m256 w1 = _mm256_add_ps(_mm256_permute2f128_ps(v2, v3, 0x20), _mm256_permute2f128_ps(v2, v3, 0x31));
    // [v0: q0+q2, q1+q3, v2: ... | v1: ..., v3: ...]
    const __m256 u = _mm256_add_ps(_mm256_shuffle_ps(w0, w1, _MM_SHUFFLE(1, 0, 1, 0)),
                                   _mm256_shuffle_ps(w0, w1, _MM_SHUFFLE(3, 2, 3, 2)));
    // [v0, v2, v0, v2 | v1, v3, v1, v3]
    const __m256 t = _mm256_add_ps(_mm256_shuffle_ps(u, u, _MM_SHUFFLE(2, 0, 2, 0)),
                                   _mm256_shuffle_ps(u, u, _MM_SHUFFLE(3, 1, 3, 1)));
    return _mm_unpacklo_ps(_mm256_castps256_ps128(t), _mm256_extractf128_ps(t, 1));
}

// Keeps loaded values in registers (see avx512.cpp's in_register).
inline void in_register(__m256& v) { __asm__("" : "+v"(v)); }
template <typename... V>
inline void in_register(__m256& v, V&... more) {
    in_register(v);
    in_register(more...);
}

// Prefill's attention, several query rows at a time (see avx512.cpp): two rows, each
// key or value read once for both, every row's numbers exactly the single-row
// kernels' (the same products in the same order, summed as hsum sums).
void attn_scores_rows(float* s, int64_t lds, const float* q, int64_t ldq, int64_t rows, const float* k, int64_t T,
                      int64_t hd, float scale) {
    int64_t r = 0;
    if (hd % 8 == 0)
        for (; r + 2 <= rows; r += 2) {
            const float *q0 = q + r * ldq, *q1 = q0 + ldq;
            float* s0 = s + r * lds;
            int64_t j = 0;
            for (; j + 2 <= T; j += 2) {  // 2 rows x 2 keys, each with attn_scores' two chains a and b
                const float *k0 = k + j * hd, *k1 = k0 + hd;
                __m256 a[4], b[4];  // [row * 2 + key]
                for (int i = 0; i < 4; ++i) a[i] = b[i] = _mm256_setzero_ps();
                int64_t d = 0;
                for (; d + 16 <= hd; d += 16) {
                    __m256 k0a = _mm256_loadu_ps(k0 + d), k0b = _mm256_loadu_ps(k0 + d + 8);
                    __m256 k1a = _mm256_loadu_ps(k1 + d), k1b = _mm256_loadu_ps(k1 + d + 8);
                    __m256 q0a = _mm256_loadu_ps(q0 + d), q0b = _mm256_loadu_ps(q0 + d + 8);
                    __m256 q1a = _mm256_loadu_ps(q1 + d), q1b = _mm256_loadu_ps(q1 + d + 8);
                    in_register(k0a, k0b, k1a, k1b, q0a, q0b, q1a, q1b);
                    a[0] = _mm256_fmadd_ps(q0a, k0a, a[0]), b[0] = _mm256_fmadd_ps(q0b, k0b, b[0]);
                    a[1] = _mm256_fmadd_ps(q0a, k1a, a[1]), b[1] = _mm256_fmadd_ps(q0b, k1b, b[1]);
                    a[2] = _mm256_fmadd_ps(q1a, k0a, a[2]), b[2] = _mm256_fmadd_ps(q1b, k0b, b[2]);
                    a[3] = _mm256_fmadd_ps(q1a, k1a, a[3]), b[3] = _mm256_fmadd_ps(q1b, k1b, b[3]);
                }
                for (; d < hd; d += 8) {
                    __m256 k0a = _mm256_loadu_ps(k0 + d), k1a = _mm256_loadu_ps(k1 + d);
                    __m256 q0a = _mm256_loadu_ps(q0 + d), q1a = _mm256_loadu_ps(q1 + d);
                    in_register(k0a, k1a, q0a, q1a);
                    a[0] = _mm256_fmadd_ps(q0a, k0a, a[0]), a[1] = _mm256_fmadd_ps(q0a, k1a, a[1]);
                    a[2] = _mm256_fmadd_ps(q1a, k0a, a[2]), a[3] = _mm256_fmadd_ps(q1a, k1a, a[3]);
                }
                const __m128 sums = _mm_mul_ps(hsum4(_mm256_add_ps(a[0], b[0]), _mm256_add_ps(a[1], b[1]),
                                                     _mm256_add_ps(a[2], b[2]), _mm256_add_ps(a[3], b[3])),
                                               _mm_set1_ps(scale));
                _mm_storel_pi(reinterpret_cast<__m64*>(s0 + j), sums);
                _mm_storeh_pi(reinterpret_cast<__m64*>(s0 + lds + j), sums);
            }
            if (j < T) {
                attn_scores(s0 + j, q0, k + j * hd, T - j, hd, scale);
                attn_scores(s0 + lds + j, q1, k + j * hd, T - j, hd, scale);
            }
        }
    for (; r < rows; ++r) attn_scores(s + r * lds, q + r * ldq, k, T, hd, scale);
}

void attn_values_rows(float* z, int64_t ldz, const float* p, int64_t ldp, int64_t rows, const float* v, int64_t T,
                      int64_t hd, bool accumulate) {
    int64_t r = 0;
    if (hd % 8 == 0)
        for (; r + 2 <= rows; r += 2) {
            float* z0 = z + r * ldz;
            const float* p0 = p + r * ldp;
            auto start = [&](int i, int64_t d) { return accumulate ? _mm256_loadu_ps(z0 + i * ldz + d) : _mm256_setzero_ps(); };
            int64_t d = 0;
            for (; d + 32 <= hd; d += 32) {  // 2 rows x a slab of 32 columns
                __m256 a[2][4];
                for (int i = 0; i < 2; ++i)
                    for (int c = 0; c < 4; ++c) a[i][c] = start(i, d + 8 * c);
                for (int64_t j = 0; j < T; ++j) {
                    const float* vj = v + j * hd + d;
                    __m256 v0 = _mm256_loadu_ps(vj), v1 = _mm256_loadu_ps(vj + 8), v2 = _mm256_loadu_ps(vj + 16),
                           v3 = _mm256_loadu_ps(vj + 24);
                    in_register(v0, v1, v2, v3);
                    for (int i = 0; i < 2; ++i) {
                        const __m256 pj = _mm256_set1_ps(p0[i * ldp + j]);
                        a[i][0] = _mm256_fmadd_ps(pj, v0, a[i][0]);
                        a[i][1] = _mm256_fmadd_ps(pj, v1, a[i][1]);
                        a[i][2] = _mm256_fmadd_ps(pj, v2, a[i][2]);
                        a[i][3] = _mm256_fmadd_ps(pj, v3, a[i][3]);
                    }
                }
                for (int i = 0; i < 2; ++i)
                    for (int c = 0; c < 4; ++c) _mm256_storeu_ps(z0 + i * ldz + d + 8 * c, a[i][c]);
            }
            for (; d < hd; d += 8) {
                __m256 a0 = start(0, d), a1 = start(1, d);
                for (int64_t j = 0; j < T; ++j) {
                    __m256 vj = _mm256_loadu_ps(v + j * hd + d);
                    in_register(vj);
                    a0 = _mm256_fmadd_ps(_mm256_set1_ps(p0[j]), vj, a0);
                    a1 = _mm256_fmadd_ps(_mm256_set1_ps(p0[ldp + j]), vj, a1);
                }
                _mm256_storeu_ps(z0 + d, a0);
                _mm256_storeu_ps(z0 + ldz + d, a1);
            }
        }
    for (; r < rows; ++r) attn_values(z + r * ldz, p + r * ldp, v, T, hd, accumulate);
}

// exp(x) to about 2 ulp (Cephes' expf polynomial); 0 below -87.3, +inf above 88.7.
inline __m256 exp256(__m256 x) {
    const __m256 tiny = _mm256_cmp_ps(x, _mm256_set1_ps(-87.33654f), _CMP_LT_OQ);
    x = _mm256_min_ps(x, _mm256_set1_ps(88.7f));
    x = _mm256_max_ps(x, _mm256_set1_ps(-87.33654f));
    const __m256 fx = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                      _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(fx, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(fx, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    const __m256 e = _mm256_add_ps(_mm256_fmadd_ps(p, _mm256_mul_ps(r, r), r), _mm256_set1_ps(1.f));
    // 2^fx in two halves so that fx = 128 (x near 88.7) does not overflow the exponent field.
    const __m256i n = _mm256_cvtps_epi32(fx);
    const __m256i h = _mm256_srai_epi32(n, 1);
    const __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(h, _mm256_set1_epi32(127)), 23));
    const __m256 s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(_mm256_sub_epi32(n, h), _mm256_set1_epi32(127)), 23));
    return _mm256_andnot_ps(tiny, _mm256_mul_ps(_mm256_mul_ps(e, s1), s2));
}

void softmax(float* x, int64_t n) {
    const int64_t n8 = n & ~int64_t(7);
    __m256 mx = _mm256_set1_ps(-__builtin_inff());
    for (int64_t i = 0; i < n8; i += 8) mx = _mm256_max_ps(mx, _mm256_loadu_ps(x + i));
    float m = hmax(mx);
    for (int64_t i = n8; i < n; ++i) m = x[i] > m ? x[i] : m;
    const __m256 mv = _mm256_set1_ps(m);
    __m256 sum = _mm256_setzero_ps();
    for (int64_t i = 0; i < n8; i += 8) {
        const __m256 e = exp256(_mm256_sub_ps(_mm256_loadu_ps(x + i), mv));
        _mm256_storeu_ps(x + i, e);
        sum = _mm256_add_ps(sum, e);
    }
    float s = hsum(sum);
    if (n8 < n) {  // the tail through the same exp, 8 lanes padded with -inf
        float t[8];
        for (int j = 0; j < 8; ++j) t[j] = n8 + j < n ? x[n8 + j] : -__builtin_inff();
        _mm256_storeu_ps(t, exp256(_mm256_sub_ps(_mm256_loadu_ps(t), mv)));
        for (int64_t j = 0; n8 + j < n; ++j) x[n8 + j] = t[j], s += t[j];
    }
    const __m256 inv = _mm256_set1_ps(1.f / s);
    for (int64_t i = 0; i < n8; i += 8) _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), inv));
    for (int64_t i = n8; i < n; ++i) x[i] *= 1.f / s;
}

void gelu(float* x, int64_t n) {
    const __m256 c = _mm256_set1_ps(-2.f * 0.7978845608028654f), c3 = _mm256_set1_ps(0.044715f), one = _mm256_set1_ps(1.f);
    auto eight = [&](const __m256 v) {
        const __m256 u2 = _mm256_mul_ps(c, _mm256_fmadd_ps(_mm256_mul_ps(c3, v), _mm256_mul_ps(v, v), v));  // -2u
        return _mm256_div_ps(v, _mm256_add_ps(one, exp256(u2)));
    };
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, eight(_mm256_loadu_ps(x + i)));
    if (i < n) {
        float t[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        for (int64_t j = 0; i + j < n; ++j) t[j] = x[i + j];
        _mm256_storeu_ps(t, eight(_mm256_loadu_ps(t)));
        for (int64_t j = 0; i + j < n; ++j) x[i + j] = t[j];
    }
}

// Sums in double (four lanes), then the same float expression as the scalar twin.
void layer_norm(float* out, const float* x, int64_t n, const float* w, const float* b, float eps) {
    const int64_t n8 = n & ~int64_t(7);
    __m256d s0 = _mm256_setzero_pd(), s1 = s0;
    for (int64_t i = 0; i < n8; i += 8) {
        s0 = _mm256_add_pd(s0, _mm256_cvtps_pd(_mm_loadu_ps(x + i)));
        s1 = _mm256_add_pd(s1, _mm256_cvtps_pd(_mm_loadu_ps(x + i + 4)));
    }
    double lanes[4];
    _mm256_storeu_pd(lanes, _mm256_add_pd(s0, s1));
    double sum = (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
    for (int64_t i = n8; i < n; ++i) sum += x[i];
    const double mean = sum / double(n);
    const __m256d mv = _mm256_set1_pd(mean);
    __m256d v0 = _mm256_setzero_pd(), v1 = v0;
    for (int64_t i = 0; i < n8; i += 8) {
        const __m256d d0 = _mm256_sub_pd(_mm256_cvtps_pd(_mm_loadu_ps(x + i)), mv);
        const __m256d d1 = _mm256_sub_pd(_mm256_cvtps_pd(_mm_loadu_ps(x + i + 4)), mv);
        v0 = _mm256_add_pd(v0, _mm256_mul_pd(d0, d0));
        v1 = _mm256_add_pd(v1, _mm256_mul_pd(d1, d1));
    }
    _mm256_storeu_pd(lanes, _mm256_add_pd(v0, v1));
    double var = (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
    for (int64_t i = n8; i < n; ++i) var += (x[i] - mean) * (x[i] - mean);
    const float inv = float(1.0 / __builtin_sqrt(var / double(n) + double(eps)));
    const float m = float(mean);
    const __m256 vm = _mm256_set1_ps(m), vi = _mm256_set1_ps(inv);
    for (int64_t i = 0; i < n8; i += 8) {
        const __m256 t = _mm256_mul_ps(_mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), vm), vi), _mm256_loadu_ps(w + i));
        _mm256_storeu_ps(out + i, _mm256_add_ps(t, _mm256_loadu_ps(b + i)));
    }
    for (int64_t i = n8; i < n; ++i) out[i] = (x[i] - m) * inv * w[i] + b[i];
}

const KernelTable kTable = {KernelIsa::Avx2, "avx2",      gemv_f32,    gemv_f16, gemm_q8_0, quantize_q8_0, dequantize_f16,
                            dequantize_q8_0, attn_scores, attn_values, softmax,  gelu,      nullptr,   layer_norm,
                            attn_scores_rows, attn_values_rows, gemv_f32_parts, gemv_f16_parts, gemv_q8_0_parts};

}  // namespace

const KernelTable* kernel_table_avx2() { return &kTable; }

#else
const KernelTable* kernel_table_avx2() { return nullptr; }
#endif

}  // namespace minigpt
