// AVX-512 kernels (F, BW, VL, DQ, VNNI), compiled for those instructions
// whatever the build flags; kernels.cpp selects them only on a CPU that has
// them. Everything here has internal linkage and nothing from the standard
// library is instantiated, so the linker cannot hand an AVX-512 copy of a
// shared inline function to code running on another CPU.
#if defined(__x86_64__)
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c")
// gcc 12 warns about its own intrinsics (_mm512_undefined_* in casts); false positive.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>
#endif

#include "kernels/kernels.h"

namespace minigpt {

#if defined(__x86_64__)
namespace avx512 {
// avx512_gemm.cpp
void gemm(float* c, int64_t ldc, const float* a, int64_t lda, int64_t n, const uint8_t* w, int64_t ld, bool w_f16,
          int64_t rows, int64_t k, float* pack);
}  // namespace avx512

namespace {

inline float hsum(__m512 v) {
    __m256 s = _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
    __m128 q = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
    q = _mm_add_ps(q, _mm_movehl_ps(q, q));
    q = _mm_add_ss(q, _mm_movehdup_ps(q));
    return _mm_cvtss_f32(q);
}

inline float hmax(__m512 v) {
    __m256 s = _mm256_max_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
    __m128 q = _mm_max_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
    q = _mm_max_ps(q, _mm_movehl_ps(q, q));
    q = _mm_max_ss(q, _mm_movehdup_ps(q));
    return _mm_cvtss_f32(q);
}

inline float h2f(uint16_t h) { return _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(h))); }
inline uint16_t f2h(float f) { return uint16_t(_mm_extract_epi16(_mm_cvtps_ph(_mm_set_ss(f), 0), 0)); }

// Element loaders: 16 values as f32 from f32 or f16 storage, and one scalar, and
// how far ahead of its reads a matrix-vector stream prefetches (see gemv_float).
struct F32Row {
    static constexpr int64_t kBytes = 4, kAheadBytes = 1536;
    static __m512 load(const void* p, int64_t i) { return _mm512_loadu_ps(static_cast<const float*>(p) + i); }
    static float at(const void* p, int64_t i) { return static_cast<const float*>(p)[i]; }
};
// f32 rows that start 32 bytes into a cache line (GGUF aligns tensors to 32 bytes, so
// half of them do, every row of GPT-2's sizes likewise): each 64-byte load would span
// two lines, and one token's matrix-vector products read 31 GB/s that way against
// 38-39 with two 32-byte loads, each within a line, as from aligned rows (Zen 5, one
// thread, medians of 21 interleaved rounds). The same 16 values, so the same numbers.
struct F32SplitRow : F32Row {
    static __m512 load(const void* p, int64_t i) {
        const float* f = static_cast<const float*>(p) + i;
        return _mm512_insertf32x8(_mm512_castps256_ps512(_mm256_loadu_ps(f)), _mm256_loadu_ps(f + 8), 1);
    }
};
struct F16Row {
    static constexpr int64_t kBytes = 2, kAheadBytes = 2048;
    static __m512 load(const void* p, int64_t i) {
        return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(static_cast<const uint16_t*>(p) + i)));
    }
    static float at(const void* p, int64_t i) { return h2f(static_cast<const uint16_t*>(p)[i]); }
};

// How many rows ahead the q8_0 kernel prefetches for a batch (q8_rows).
constexpr int64_t kPrefetchRowsQ8 = 8;

// The dot products of S rows with x, the rows `stride` rows apart (y likewise), in
// lockstep over the columns: each load of x serves S rows. Two accumulators per row
// (columns i..i+15 and i+16..i+31 of every 32), then the 16-column and scalar tails:
// a row's number does not depend on S.
template <class Row, int S>
inline void dot_rows(float* y, const uint8_t* w, int64_t ld, int64_t stride, const float* x, int64_t cols) {
    const int64_t n32 = cols & ~int64_t(31), n16 = cols & ~int64_t(15);
    const uint8_t* wr[S];
    __m512 a[S], b[S];
    for (int s = 0; s < S; ++s) wr[s] = w + s * stride * ld, a[s] = b[s] = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i < n32; i += 32) {
        const __m512 x0 = _mm512_loadu_ps(x + i), x1 = _mm512_loadu_ps(x + i + 16);
        for (int s = 0; s < S; ++s) {
            // Non-temporal (into L1, not kept in the outer caches): the weights are read
            // once a token. f32's 32 columns span two cache lines.
            const char* ahead = reinterpret_cast<const char*>(wr[s] + i * Row::kBytes + Row::kAheadBytes);
            _mm_prefetch(ahead, _MM_HINT_NTA);
            if (Row::kBytes == 4) _mm_prefetch(ahead + 64, _MM_HINT_NTA);
            a[s] = _mm512_fmadd_ps(Row::load(wr[s], i), x0, a[s]);
            b[s] = _mm512_fmadd_ps(Row::load(wr[s], i + 16), x1, b[s]);
        }
    }
    for (; i < n16; i += 16) {
        const __m512 x0 = _mm512_loadu_ps(x + i);
        for (int s = 0; s < S; ++s) a[s] = _mm512_fmadd_ps(Row::load(wr[s], i), x0, a[s]);
    }
    for (int s = 0; s < S; ++s) {
        float sum = hsum(_mm512_add_ps(a[s], b[s]));
        for (int64_t k = i; k < cols; ++k) sum += Row::at(wr[s], k) * x[k];
        y[s * stride] = sum;
    }
}

// The rows are cut into four equal parts, read side by side: four streams, each
// strictly in order through memory, as a STREAM-style read with several strides
// reads fastest. Four adjacent rows in lockstep instead (what this was) are four
// short streams that restart every row group, which the prefetchers followed worse:
// the matrix-vector products of one GPT-2 124M token at one thread (Zen 5, medians
// of 21 interleaved rounds) read f16 at 25.5 GB/s that way against 37.1 now, and
// f32 at 41.4 against 45.9; the plain one-stream probe read 31.5 and 41.4 then.
// The prefetch distances were about the best of 0-8 KiB: 2 KiB for f16, 1.5 KiB for
// f32 (at 2 threads 1-1.5 KiB read 3-10 % more than 2 KiB in three interleaved
// comparisons; at one thread they were even).
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

inline bool on_cache_lines(const uint8_t* w, int64_t ld) {
    return ((reinterpret_cast<uintptr_t>(w) | uintptr_t(ld)) & 63) == 0;
}
void gemv_f32(float* y, const uint8_t* w, int64_t ld, int64_t rows, const float* x, int64_t cols) {
    if (on_cache_lines(w, ld))
        gemv_float<F32Row>(y, w, ld, rows, x, cols);
    else
        gemv_float<F32SplitRow>(y, w, ld, rows, x, cols);
}
void gemv_f16(float* y, const uint8_t* w, int64_t ld, int64_t rows, const float* x, int64_t cols) {
    gemv_float<F16Row>(y, w, ld, rows, x, cols);
}
void gemv_f32_parts(float* y, const uint8_t* w, int64_t ld, int64_t part, int64_t steps, const float* x, int64_t cols) {
    if (on_cache_lines(w, ld))
        gemv_float_parts<F32Row>(y, w, ld, part, steps, x, cols);
    else
        gemv_float_parts<F32SplitRow>(y, w, ld, part, steps, x, cols);
}
void gemv_f16_parts(float* y, const uint8_t* w, int64_t ld, int64_t part, int64_t steps, const float* x, int64_t cols) {
    gemv_float_parts<F16Row>(y, w, ld, part, steps, x, cols);
}

// q8_0 · q8_0 with VNNI: vpdpbusd multiplies unsigned by signed bytes, so the
// weights are offset to w+128 (xor 0x80) and each accumulator starts from
// -128 * (its 4 x values' sum), which cancels the offset exactly. Two blocks
// share one 512-bit register (lanes 0-7 block k, 8-15 block k+1); the int32
// lanes are scaled by d_w * d_x in float and accumulated.
//
// R rows x NT vectors per call, R*NT accumulators. Every output goes through
// the same instructions in the same order whatever R and NT are, so a row's
// result is bit-identical in a batch (prefill) and alone (decoding).
template <int R, int NT>
void q8_tile(float* y, int64_t ldy, int64_t y_step, const uint8_t* w, int64_t row_step, const QuantizedVector* x,
             int64_t ahead) {
    const int64_t nb = x[0].n_blocks, pairs_end = nb & ~int64_t(1);
    const __m512i k80 = _mm512_set1_epi8(char(0x80));
    const __m512i halves = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
    const BlockQ8_0* b[R];
    for (int r = 0; r < R; ++r) b[r] = reinterpret_cast<const BlockQ8_0*>(w + r * row_step);
    __m512 acc[R][NT];
    for (int r = 0; r < R; ++r)
        for (int t = 0; t < NT; ++t) acc[r][t] = _mm512_setzero_ps();
    for (int64_t k = 0; k < pairs_end; k += 2) {
        __m512i xq[NT], off[NT];
        __m512 dx[NT];
        for (int t = 0; t < NT; ++t) {
            xq[t] = _mm512_loadu_si512(x[t].q + 32 * k);
            off[t] = _mm512_loadu_si512(x[t].offset + 8 * k);
            dx[t] = _mm512_permutexvar_ps(
                halves, _mm512_castps128_ps512(_mm_castsi128_ps(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(x[t].d + k)))));
        }
        if (ahead)  // T0: non-temporal measured within noise of it for q8_0
            for (int r = 0; r < R; ++r) _mm_prefetch(reinterpret_cast<const char*>(b[r] + k) + ahead, _MM_HINT_T0);
        for (int r = 0; r < R; ++r) {
            const __m512i wq = _mm512_xor_si512(
                _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(b[r][k].q))),
                                   _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b[r][k + 1].q)), 1),
                k80);
            const __m128 dw2 = _mm_cvtph_ps(_mm_cvtsi32_si128(int(b[r][k].scale | uint32_t(b[r][k + 1].scale) << 16)));
            const __m512 dw = _mm512_permutexvar_ps(halves, _mm512_castps128_ps512(dw2));
            for (int t = 0; t < NT; ++t) {
                const __m512i s = _mm512_dpbusd_epi32(off[t], wq, xq[t]);
                acc[r][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_mul_ps(dw, dx[t]), acc[r][t]);
            }
        }
    }
    for (int r = 0; r < R; ++r)
        for (int t = 0; t < NT; ++t) {
            float v = hsum(acc[r][t]);
            if (nb & 1) {  // the last block of an odd count, 256 bits wide
                const int64_t k = nb - 1;
                const __m256i wq = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b[r][k].q));
                const __m256i s = _mm256_dpbusd_epi32(
                    _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[t].offset + 8 * k)),
                    _mm256_xor_si256(wq, _mm256_set1_epi8(char(0x80))),
                    _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[t].q + 32 * k)));
                const __m256 p = _mm256_mul_ps(_mm256_cvtepi32_ps(s), _mm256_set1_ps(h2f(b[r][k].scale) * x[t].d[k]));
                __m128 q = _mm_add_ps(_mm256_castps256_ps128(p), _mm256_extractf128_ps(p, 1));
                q = _mm_add_ps(q, _mm_movehl_ps(q, q));
                v += _mm_cvtss_f32(_mm_add_ss(q, _mm_movehdup_ps(q)));
            }
            y[t * ldy + r * y_step] = v;
        }
}

// A batch takes 4 adjacent rows per pass, reused from cache for its vectors, the
// group of rows kPrefetchRowsQ8 ahead prefetched. Decoding (one vector) reads the
// rows as four streams, as gemv_float does (the rows cut into four parts read side
// by side), each prefetched kAheadQ8 bytes ahead. One row at a time, one stream
// without prefetching (what this was), read one token's matrices at 24.7 GB/s
// against 40.1 now (one thread, Zen 5, medians of 21 interleaved rounds; probe
// 39.7; 0 and 1 KiB ahead 35.8 and 36.6, non-temporal 39.7); in `generate
// --profile` the token took 3.5 ms against 4.1.
constexpr int64_t kAheadQ8 = 2048;
void gemv_q8_0_parts(float* y, const uint8_t* w, int64_t ld, int64_t part, int64_t steps, const QuantizedVector* x) {
    for (int64_t r = 0; r < steps; ++r) q8_tile<kGemvParts, 1>(y + r, 0, part, w + r * ld, part * ld, x, kAheadQ8);
}
template <int NT>
void q8_rows(float* y, int64_t ldy, const uint8_t* w, int64_t ld, int64_t rows, const QuantizedVector* x) {
    int64_t r = 0;
    if (NT > 1) {
        for (; r + 4 <= rows; r += 4) q8_tile<4, NT>(y + r, ldy, 1, w + r * ld, ld, x, kPrefetchRowsQ8 * ld);
    } else {
        const int64_t part = rows / kGemvParts;
        gemv_q8_0_parts(y, w, ld, part, part, x);
        r = kGemvParts * part;
    }
    for (; r < rows; ++r) q8_tile<1, NT>(y + r, ldy, 1, w + r * ld, ld, x, 0);
}

// Inputs three at a time (then two, one): each row block's weights, decoded once
// (load, offset, scales), serve three inputs. 4 rows x 3 inputs = 12 accumulators
// plus 9 for the inputs fit the 32 registers (4 x 4 ran slower). pp512 at 1 thread,
// q8_0, 5 interleaved runs of each: 612-661 tok/s with pairs, 670-730 with triples.
void gemm_q8_0(float* y, int64_t ldy, const uint8_t* w, int64_t ld, int64_t rows, const QuantizedVector* x, int64_t n) {
    int64_t t = 0;
    for (; t + 3 <= n; t += 3) q8_rows<3>(y + t * ldy, ldy, w, ld, rows, x + t);
    for (; t + 2 <= n; t += 2) q8_rows<2>(y + t * ldy, ldy, w, ld, rows, x + t);
    if (t < n) q8_rows<1>(y + t * ldy, ldy, w, ld, rows, x + t);
}

void quantize_q8_0(const float* x, int64_t n, QuantizedVector& out) {
    const int64_t nb = n / kQ8_0Block;
    const __m256i ones = _mm256_set1_epi8(1);
    for (int64_t b = 0; b < nb; ++b) {
        const __m512 v0 = _mm512_loadu_ps(x + 32 * b), v1 = _mm512_loadu_ps(x + 32 * b + 16);
        const float amax = hmax(_mm512_max_ps(_mm512_abs_ps(v0), _mm512_abs_ps(v1)));
        const float d = amax / 127.f, id = d != 0.f ? 1.f / d : 0.f;
        out.d[b] = h2f(f2h(d));
        const __m512 vid = _mm512_set1_ps(id);
        // cvtps rounds to nearest even (the default MXCSR mode), as the scalar twin's nearbyint.
        const __m128i q0 = _mm512_cvtsepi32_epi8(_mm512_cvtps_epi32(_mm512_mul_ps(v0, vid)));
        const __m128i q1 = _mm512_cvtsepi32_epi8(_mm512_cvtps_epi32(_mm512_mul_ps(v1, vid)));
        const __m256i q = _mm256_inserti128_si256(_mm256_castsi128_si256(q0), q1, 1);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(out.q + 32 * b), q);
        const __m256i sums = _mm256_dpbusd_epi32(_mm256_setzero_si256(), ones, q);  // 8 sums of 4
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(out.offset + 8 * b),
                            _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(sums, 7)));
    }
    out.n_blocks = nb;
}

void dequantize_f16(float* out, const uint8_t* row, int64_t n) {
    const uint16_t* p = reinterpret_cast<const uint16_t*>(row);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(out + i, _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i))));
    for (; i < n; ++i) out[i] = h2f(p[i]);
}

void dequantize_q8_0(float* out, const uint8_t* row, int64_t n) {
    const BlockQ8_0* b = reinterpret_cast<const BlockQ8_0*>(row);
    for (int64_t k = 0; k < n / kQ8_0Block; ++k) {
        const __m512 d = _mm512_set1_ps(h2f(b[k].scale));
        const __m128i q0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b[k].q));
        const __m128i q1 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b[k].q + 16));
        _mm512_storeu_ps(out + 32 * k, _mm512_mul_ps(d, _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q0))));
        _mm512_storeu_ps(out + 32 * k + 16, _mm512_mul_ps(d, _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q1))));
    }
}

// Decoding reads each head's keys and values once, a few KiB each, from memory:
// too short a stream for the hardware prefetcher to ramp up, so the kernels ask
// for the rows kAttnAhead positions ahead themselves, up to their last row (the
// rows after it in the KV cache belong to another head).
constexpr int64_t kAttnAhead = 16;
inline void prefetch_rows(const float* p, int64_t floats) {
    for (int64_t i = 0; i < floats; i += 16) _mm_prefetch(reinterpret_cast<const char*>(p + i), _MM_HINT_T0);
}

// hsum of each of the 16 registers, as one register (lane t = hsum(v[t])): the same
// additions as hsum's, pair for pair (lanes i and i + 8, then i and i + 4, i and
// i + 2, i and i + 1), for 16 sums at once.
inline __m512 hsum16(__m512 (&v)[16]) {
    __m512 w[8], u[4], t[2];
    for (int m = 0; m < 8; ++m)  // [key 2m: s0..7 | key 2m+1: s0..7], s_i = v_i + v_i+8
        w[m] = _mm512_add_ps(_mm512_shuffle_f32x4(v[2 * m], v[2 * m + 1], 0x44),
                             _mm512_shuffle_f32x4(v[2 * m], v[2 * m + 1], 0xEE));
    for (int m = 0; m < 4; ++m)  // 128-bit block c: key 4m + c's q0..3, q_i = s_i + s_i+4
        u[m] = _mm512_add_ps(_mm512_shuffle_f32x4(w[2 * m], w[2 * m + 1], 0x88),
                             _mm512_shuffle_f32x4(w[2 * m], w[2 * m + 1], 0xDD));
    for (int m = 0; m < 2; ++m)  // block c: [key c: q0+q2, q1+q3 | key c + 4: ...] (keys of u[2m], u[2m+1])
        t[m] = _mm512_add_ps(_mm512_shuffle_ps(u[2 * m], u[2 * m + 1], _MM_SHUFFLE(1, 0, 1, 0)),
                             _mm512_shuffle_ps(u[2 * m], u[2 * m + 1], _MM_SHUFFLE(3, 2, 3, 2)));
    // Block c: the sums of keys c, c + 4, c + 8, c + 12; into key order.
    const __m512 sums = _mm512_add_ps(_mm512_shuffle_ps(t[0], t[1], _MM_SHUFFLE(2, 0, 2, 0)),
                                      _mm512_shuffle_ps(t[0], t[1], _MM_SHUFFLE(3, 1, 3, 1)));
    return _mm512_permutexvar_ps(_mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15), sums);
}

void attn_scores(float* s, const float* q, const float* k, int64_t T, int64_t hd, float scale) {
    const int64_t n16 = hd & ~int64_t(15);
    int64_t j = 0;
    prefetch_rows(k, std::min(T, kAttnAhead) * hd);
    // Two keys at a time: two independent FMA chains.
    for (; j + 2 <= T; j += 2) {
        const float *k0 = k + j * hd, *k1 = k0 + hd;
        if (j + kAttnAhead < T) prefetch_rows(k0 + kAttnAhead * hd, std::min<int64_t>(2, T - j - kAttnAhead) * hd);
        __m512 a0 = _mm512_setzero_ps(), a1 = a0;
        int64_t d = 0;
        for (; d < n16; d += 16) {
            const __m512 qv = _mm512_loadu_ps(q + d);
            a0 = _mm512_fmadd_ps(qv, _mm512_loadu_ps(k0 + d), a0);
            a1 = _mm512_fmadd_ps(qv, _mm512_loadu_ps(k1 + d), a1);
        }
        float s0 = hsum(a0), s1 = hsum(a1);
        for (; d < hd; ++d) s0 += q[d] * k0[d], s1 += q[d] * k1[d];
        s[j] = s0 * scale, s[j + 1] = s1 * scale;
    }
    for (; j < T; ++j) {
        const float* kj = k + j * hd;
        __m512 a = _mm512_setzero_ps();
        int64_t d = 0;
        for (; d < n16; d += 16) a = _mm512_fmadd_ps(_mm512_loadu_ps(q + d), _mm512_loadu_ps(kj + d), a);
        float v = hsum(a);
        for (; d < hd; ++d) v += q[d] * kj[d];
        s[j] = v * scale;
    }
}

void attn_values(float* z, const float* p, const float* v, int64_t T, int64_t hd, bool accumulate) {
    auto start = [&](int64_t d, __mmask16 m) { return accumulate ? _mm512_maskz_loadu_ps(m, z + d) : _mm512_setzero_ps(); };
    int64_t d = 0;
    prefetch_rows(v, std::min(T, kAttnAhead) * hd);
    // Columns in slabs of 64 (four registers) over every key.
    for (; d + 64 <= hd; d += 64) {
        __m512 a0 = start(d, 0xffff), a1 = start(d + 16, 0xffff), a2 = start(d + 32, 0xffff), a3 = start(d + 48, 0xffff);
        for (int64_t j = 0; j < T; ++j) {
            const __m512 pj = _mm512_set1_ps(p[j]);
            const float* vj = v + j * hd + d;
            if (j + kAttnAhead < T) prefetch_rows(vj + kAttnAhead * hd, 64);
            a0 = _mm512_fmadd_ps(pj, _mm512_loadu_ps(vj), a0);
            a1 = _mm512_fmadd_ps(pj, _mm512_loadu_ps(vj + 16), a1);
            a2 = _mm512_fmadd_ps(pj, _mm512_loadu_ps(vj + 32), a2);
            a3 = _mm512_fmadd_ps(pj, _mm512_loadu_ps(vj + 48), a3);
        }
        _mm512_storeu_ps(z + d, a0);
        _mm512_storeu_ps(z + d + 16, a1);
        _mm512_storeu_ps(z + d + 32, a2);
        _mm512_storeu_ps(z + d + 48, a3);
    }
    for (; d < hd; d += 16) {
        const __mmask16 m = (hd - d) >= 16 ? __mmask16(0xffff) : __mmask16((1u << (hd - d)) - 1);
        __m512 a = start(d, m);
        for (int64_t j = 0; j < T; ++j) a = _mm512_fmadd_ps(_mm512_set1_ps(p[j]), _mm512_maskz_loadu_ps(m, v + j * hd + d), a);
        _mm512_mask_storeu_ps(z + d, m, a);
    }
}

// Keeps loaded values in registers: GCC otherwise folds a load into every FMA that
// uses it, and four rows' FMAs load each value four times from L1 (per layer of a
// 512-token prompt, isolated: attn_values_rows 2.4 -> 1.2 ms, attn_scores_rows 3.0 ->
// 1.7-1.9 ms).
inline void in_register(__m512& v) { __asm__("" : "+v"(v)); }
template <typename... V>
inline void in_register(__m512& v, V&... more) {
    in_register(v);
    in_register(more...);
}

// Prefill's attention reads a head's keys and values from L2 for every query row:
// at one row at a time, the reads, not the arithmetic, set the pace. These take
// four rows at a time, each key or value read once for the four, and compute every
// row's numbers exactly as the single-row kernels above do (the same products, in
// the same order, summed as hsum sums).
void attn_scores_rows(float* s, int64_t lds, const float* q, int64_t ldq, int64_t rows, const float* k, int64_t T,
                      int64_t hd, float scale) {
    int64_t r = 0;
    if (hd % 16 == 0)
        for (; r + 4 <= rows; r += 4) {
            const float* q0 = q + r * ldq;
            float* s0 = s + r * lds;
            int64_t j = 0;
            for (; j + 4 <= T; j += 4) {  // 4 rows x 4 keys: sixteen chains, summed by hsum16
                const float* kj = k + j * hd;
                __m512 a[16];
                for (__m512& x : a) x = _mm512_setzero_ps();
                for (int64_t d = 0; d < hd; d += 16) {
                    __m512 kv[4];
                    for (int t = 0; t < 4; ++t) kv[t] = _mm512_loadu_ps(kj + t * hd + d);
                    in_register(kv[0], kv[1], kv[2], kv[3]);
                    for (int i = 0; i < 4; ++i) {
                        __m512 qv = _mm512_loadu_ps(q0 + i * ldq + d);
                        in_register(qv);
                        for (int t = 0; t < 4; ++t) a[i * 4 + t] = _mm512_fmadd_ps(qv, kv[t], a[i * 4 + t]);
                    }
                }
                const __m512 sums = _mm512_mul_ps(hsum16(a), _mm512_set1_ps(scale));  // row i in lanes 4i..4i+3
                _mm_storeu_ps(s0 + j, _mm512_castps512_ps128(sums));
                _mm_storeu_ps(s0 + lds + j, _mm512_extractf32x4_ps(sums, 1));
                _mm_storeu_ps(s0 + 2 * lds + j, _mm512_extractf32x4_ps(sums, 2));
                _mm_storeu_ps(s0 + 3 * lds + j, _mm512_extractf32x4_ps(sums, 3));
            }
            if (j < T)
                for (int i = 0; i < 4; ++i) attn_scores(s0 + i * lds + j, q0 + i * ldq, k + j * hd, T - j, hd, scale);
        }
    for (; r < rows; ++r) attn_scores(s + r * lds, q + r * ldq, k, T, hd, scale);
}

void attn_values_rows(float* z, int64_t ldz, const float* p, int64_t ldp, int64_t rows, const float* v, int64_t T,
                      int64_t hd, bool accumulate) {
    int64_t r = 0;
    for (; r + 4 <= rows; r += 4) {
        float* z0 = z + r * ldz;
        const float* p0 = p + r * ldp;
        auto start = [&](int i, int64_t d, __mmask16 m) {
            return accumulate ? _mm512_maskz_loadu_ps(m, z0 + i * ldz + d) : _mm512_setzero_ps();
        };
        int64_t d = 0;
        for (; d + 64 <= hd; d += 64) {  // 4 rows x a slab of 64 columns
            __m512 a[4][4];
            for (int i = 0; i < 4; ++i)
                for (int c = 0; c < 4; ++c) a[i][c] = start(i, d + 16 * c, 0xffff);
            for (int64_t j = 0; j < T; ++j) {
                const float* vj = v + j * hd + d;
                __m512 v0 = _mm512_loadu_ps(vj), v1 = _mm512_loadu_ps(vj + 16), v2 = _mm512_loadu_ps(vj + 32),
                       v3 = _mm512_loadu_ps(vj + 48);
                in_register(v0, v1, v2, v3);
                for (int i = 0; i < 4; ++i) {
                    const __m512 pj = _mm512_set1_ps(p0[i * ldp + j]);
                    a[i][0] = _mm512_fmadd_ps(pj, v0, a[i][0]);
                    a[i][1] = _mm512_fmadd_ps(pj, v1, a[i][1]);
                    a[i][2] = _mm512_fmadd_ps(pj, v2, a[i][2]);
                    a[i][3] = _mm512_fmadd_ps(pj, v3, a[i][3]);
                }
            }
            for (int i = 0; i < 4; ++i)
                for (int c = 0; c < 4; ++c) _mm512_storeu_ps(z0 + i * ldz + d + 16 * c, a[i][c]);
        }
        for (; d < hd; d += 16) {
            const __mmask16 m = (hd - d) >= 16 ? __mmask16(0xffff) : __mmask16((1u << (hd - d)) - 1);
            __m512 a[4];
            for (int i = 0; i < 4; ++i) a[i] = start(i, d, m);
            for (int64_t j = 0; j < T; ++j) {
                __m512 vj = _mm512_maskz_loadu_ps(m, v + j * hd + d);
                in_register(vj);
                for (int i = 0; i < 4; ++i) a[i] = _mm512_fmadd_ps(_mm512_set1_ps(p0[i * ldp + j]), vj, a[i]);
            }
            for (int i = 0; i < 4; ++i) _mm512_mask_storeu_ps(z0 + i * ldz + d, m, a[i]);
        }
    }
    for (; r < rows; ++r) attn_values(z + r * ldz, p + r * ldp, v, T, hd, accumulate);
}

// exp(x) to about 2 ulp (Cephes' expf polynomial); 0 below -87.3 (where expf
// is subnormal or 0), +inf above 88.7.
inline __m512 exp512(__m512 x) {
    const __mmask16 tiny = _mm512_cmp_ps_mask(x, _mm512_set1_ps(-87.33654f), _CMP_LT_OQ);
    x = _mm512_min_ps(x, _mm512_set1_ps(88.7f));
    x = _mm512_max_ps(x, _mm512_set1_ps(-87.33654f));
    const __m512 fx = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)), _MM_FROUND_TO_NEAREST_INT);
    __m512 r = _mm512_fnmadd_ps(fx, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(fx, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    const __m512 e = _mm512_add_ps(_mm512_fmadd_ps(p, _mm512_mul_ps(r, r), r), _mm512_set1_ps(1.f));
    return _mm512_maskz_mov_ps(__mmask16(~tiny), _mm512_scalef_ps(e, fx));
}

inline __mmask16 tail_mask(int64_t left) { return left >= 16 ? __mmask16(0xffff) : __mmask16((1u << left) - 1); }

void softmax(float* x, int64_t n) {
    __m512 mx = _mm512_set1_ps(-__builtin_inff());
    for (int64_t i = 0; i < n; i += 16) mx = _mm512_max_ps(mx, _mm512_mask_loadu_ps(mx, tail_mask(n - i), x + i));
    const __m512 m = _mm512_set1_ps(hmax(mx));
    __m512 sum = _mm512_setzero_ps();
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 k = tail_mask(n - i);
        const __m512 e = exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + i), m));
        _mm512_mask_storeu_ps(x + i, k, e);
        sum = _mm512_mask_add_ps(sum, k, sum, e);
    }
    const __m512 inv = _mm512_set1_ps(1.f / hsum(sum));
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 k = tail_mask(n - i);
        _mm512_mask_storeu_ps(x + i, k, _mm512_mul_ps(_mm512_maskz_loadu_ps(k, x + i), inv));
    }
}

void gelu(float* x, int64_t n) {
    const __m512 c = _mm512_set1_ps(-2.f * 0.7978845608028654f), c3 = _mm512_set1_ps(0.044715f), one = _mm512_set1_ps(1.f);
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 k = tail_mask(n - i);
        const __m512 v = _mm512_maskz_loadu_ps(k, x + i);
        const __m512 u2 = _mm512_mul_ps(c, _mm512_fmadd_ps(_mm512_mul_ps(c3, v), _mm512_mul_ps(v, v), v));  // -2u
        _mm512_mask_storeu_ps(x + i, k, _mm512_div_ps(v, _mm512_add_ps(one, exp512(u2))));
    }
}

// Sums in double (eight lanes), then the same float expression as the scalar twin.
void layer_norm(float* out, const float* x, int64_t n, const float* w, const float* b, float eps) {
    const int64_t n8 = n & ~int64_t(7);
    __m512d s = _mm512_setzero_pd();
    for (int64_t i = 0; i < n8; i += 8) s = _mm512_add_pd(s, _mm512_cvtps_pd(_mm256_loadu_ps(x + i)));
    double sum = _mm512_reduce_add_pd(s);
    for (int64_t i = n8; i < n; ++i) sum += x[i];
    const double mean = sum / double(n);
    const __m512d mv = _mm512_set1_pd(mean);
    __m512d v = _mm512_setzero_pd();
    for (int64_t i = 0; i < n8; i += 8) {
        const __m512d d = _mm512_sub_pd(_mm512_cvtps_pd(_mm256_loadu_ps(x + i)), mv);
        v = _mm512_add_pd(v, _mm512_mul_pd(d, d));
    }
    double var = _mm512_reduce_add_pd(v);
    for (int64_t i = n8; i < n; ++i) var += (x[i] - mean) * (x[i] - mean);
    const float inv = float(1.0 / __builtin_sqrt(var / double(n) + double(eps)));
    const float m = float(mean);
    const __m512 vm = _mm512_set1_ps(m), vi = _mm512_set1_ps(inv);
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 k = tail_mask(n - i);
        const __m512 t = _mm512_mul_ps(_mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + i), vm), vi),
                                       _mm512_maskz_loadu_ps(k, w + i));
        _mm512_mask_storeu_ps(out + i, k, _mm512_add_ps(t, _mm512_maskz_loadu_ps(k, b + i)));
    }
}

const KernelTable kTable = {KernelIsa::Avx512, "avx512", gemv_f32,    gemv_f16,    gemm_q8_0, quantize_q8_0, dequantize_f16,
                            dequantize_q8_0,   attn_scores, attn_values, softmax,     gelu,         avx512::gemm, layer_norm,
                            attn_scores_rows,  attn_values_rows, gemv_f32_parts, gemv_f16_parts, gemv_q8_0_parts};

}  // namespace

const KernelTable* kernel_table_avx512() { return &kTable; }

#else
const KernelTable* kernel_table_avx512() { return nullptr; }
#endif

}  // namespace minigpt
