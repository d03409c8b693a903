// AVX-512 matrix product for prefill: C (n, rows) = A (n, K) · Wᵀ with W (rows,
// K) in f32 or f16. OpenBLAS's Haswell kernel (what Debian's DYNAMIC_ARCH
// build picks on AMD CPUs with AVX-512) uses 256-bit FMAs; on a core with two
// 512-bit FMA pipes this kernel does twice the work per instruction.
//
// Blocking (BLIS-style): K in blocks of kKc; for each block, W's rows in
// panels of kNr = 32, dequantized and transposed into a packed panel
// [kKc][32] that stays in L2 while every block of kMr = 12 input rows is
// multiplied with it: 24 zmm accumulators (12 rows x 2 vectors of 16 W rows),
// each k step 2 panel loads, 12 broadcasts of A and 24 FMAs. Compiled for
// AVX-512 whatever the build flags; internal linkage except the entry point.
//
// Why kKc = 768 (GPT-2 124M's width), not a 32 KiB panel in L1 (256 deep, what
// this was): with K = 768 in one block, each output is written once instead of
// loaded and stored again for every further block, and C (n x rows, 4.7 MB for
// the QKV product of 512 tokens) no longer goes through the caches three times.
// The panel's two loads per 24 FMAs come from L2 at no cost. On the four
// products of a 124M block at n = 512, one thread (Zen 5, in one process, three
// rounds): f32 174-201 GFLOP/s against 143-179 with 256, f16 180-201 against
// 161-183; the four-fold deeper K of the MLP's down projection gained nothing
// from 1024-3072. Blocking the inputs for L2 too (96-264 rows) was slower.
#if defined(__x86_64__)
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c")
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>
#endif

#include "kernels/kernels.h"

namespace minigpt {

#if defined(__x86_64__)
namespace {

constexpr int64_t kKc = 768, kNr = 32, kMr = 12;
static_assert(kKc * kNr <= kGemmPackFloats, "the caller's scratch holds one panel");

// 16 registers of 16 floats transposed in place: v[c][r] = old v[r][c].
inline void transpose16x16(__m512 (&v)[16]) {
    __m512 t[16];
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_ps(v[i], v[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(v[i], v[i + 1]);
    }
    for (int i = 0; i < 16; i += 4) {
        v[i] = _mm512_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(1, 0, 1, 0));
        v[i + 1] = _mm512_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(3, 2, 3, 2));
        v[i + 2] = _mm512_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(1, 0, 1, 0));
        v[i + 3] = _mm512_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(3, 2, 3, 2));
    }
    for (int i = 0; i < 4; ++i) {
        t[i] = _mm512_shuffle_f32x4(v[i], v[4 + i], 0x88);
        t[4 + i] = _mm512_shuffle_f32x4(v[i], v[4 + i], 0xDD);
        t[8 + i] = _mm512_shuffle_f32x4(v[8 + i], v[12 + i], 0x88);
        t[12 + i] = _mm512_shuffle_f32x4(v[8 + i], v[12 + i], 0xDD);
    }
    for (int i = 0; i < 4; ++i) {
        v[i] = _mm512_shuffle_f32x4(t[i], t[8 + i], 0x88);
        v[8 + i] = _mm512_shuffle_f32x4(t[i], t[8 + i], 0xDD);
        v[4 + i] = _mm512_shuffle_f32x4(t[4 + i], t[12 + i], 0x88);
        v[12 + i] = _mm512_shuffle_f32x4(t[4 + i], t[12 + i], 0xDD);
    }
}

// panel[k*32 + j] = W[j0 + j][k0 + k] for j < nr (zero beyond), k < kc. Each full half
// of the panel (16 rows) goes 16 values of each row at a time, transposed in
// registers: element by element, packing took ~10 % of a 512-token f16 prefill's
// GEMM time at 1 thread. What is left over (a part-full half, the last kc % 16
// values) goes element by element.
void pack_panel(float* panel, const uint8_t* w, int64_t ld, bool f16, int64_t j0, int64_t nr, int64_t k0, int64_t kc) {
    auto at = [&](int64_t j, int64_t k) {
        const uint8_t* src = w + (j0 + j) * ld;
        return f16 ? _cvtsh_ss(reinterpret_cast<const uint16_t*>(src)[k0 + k])
                   : reinterpret_cast<const float*>(src)[k0 + k];
    };
    for (int64_t half = 0; half < kNr; half += 16) {
        const bool full = nr >= half + 16;
        const int64_t k16 = full ? kc / 16 * 16 : 0;
        for (int64_t k = 0; k < k16; k += 16) {
            __m512 v[16];
            for (int r = 0; r < 16; ++r) {
                const uint8_t* src = w + (j0 + half + r) * ld;
                v[r] = f16 ? _mm512_cvtph_ps(_mm256_loadu_si256(
                                 reinterpret_cast<const __m256i*>(reinterpret_cast<const uint16_t*>(src) + k0 + k)))
                           : _mm512_loadu_ps(reinterpret_cast<const float*>(src) + k0 + k);
            }
            transpose16x16(v);
            for (int c = 0; c < 16; ++c) _mm512_storeu_ps(panel + (k + c) * kNr + half, v[c]);
        }
        for (int64_t k = k16; k < kc; ++k)
            for (int64_t j = half; j < half + 16; ++j) panel[k * kNr + j] = j < nr ? at(j, k) : 0.f;
    }
}

// C[i][0..32) (+)= sum_k A[i][k] * panel[k][0..32) for i < MR; columns
// beyond `cols` are not written.
template <int MR>
void micro(float* c, int64_t ldc, const float* a, int64_t lda, const float* panel, int64_t kc, bool accumulate,
           __mmask16 m0, __mmask16 m1) {
    __m512 acc[MR][2];
    for (int i = 0; i < MR; ++i) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
    for (int64_t k = 0; k < kc; ++k) {
        const __m512 b0 = _mm512_loadu_ps(panel + k * kNr), b1 = _mm512_loadu_ps(panel + k * kNr + 16);
        for (int i = 0; i < MR; ++i) {
            const __m512 ai = _mm512_set1_ps(a[i * lda + k]);
            acc[i][0] = _mm512_fmadd_ps(ai, b0, acc[i][0]);
            acc[i][1] = _mm512_fmadd_ps(ai, b1, acc[i][1]);
        }
    }
    for (int i = 0; i < MR; ++i) {
        float* ci = c + i * ldc;
        if (accumulate) {
            acc[i][0] = _mm512_add_ps(acc[i][0], _mm512_maskz_loadu_ps(m0, ci));
            acc[i][1] = _mm512_add_ps(acc[i][1], _mm512_maskz_loadu_ps(m1, ci + 16));
        }
        _mm512_mask_storeu_ps(ci, m0, acc[i][0]);
        _mm512_mask_storeu_ps(ci + 16, m1, acc[i][1]);
    }
}

using MicroFn = void (*)(float*, int64_t, const float*, int64_t, const float*, int64_t, bool, __mmask16, __mmask16);
constexpr MicroFn kMicro[kMr + 1] = {nullptr,   micro<1>, micro<2>, micro<3>,  micro<4>,  micro<5>, micro<6>,
                                      micro<7>, micro<8>, micro<9>, micro<10>, micro<11>, micro<12>};

}  // namespace

namespace avx512 {

void gemm(float* c, int64_t ldc, const float* a, int64_t lda, int64_t n, const uint8_t* w, int64_t ld, bool w_f16,
          int64_t rows, int64_t K, float* pack) {
    float* panel = pack;  // kKc * kNr
    for (int64_t k0 = 0; k0 < K; k0 += kKc) {
        const int64_t kc = K - k0 < kKc ? K - k0 : kKc;
        for (int64_t j0 = 0; j0 < rows; j0 += kNr) {
            const int64_t nr = rows - j0 < kNr ? rows - j0 : kNr;
            pack_panel(panel, w, ld, w_f16, j0, nr, k0, kc);
            const __mmask16 m0 = nr >= 16 ? __mmask16(0xffff) : __mmask16((1u << nr) - 1);
            const __mmask16 m1 = nr >= 32 ? __mmask16(0xffff) : nr <= 16 ? __mmask16(0) : __mmask16((1u << (nr - 16)) - 1);
            for (int64_t i0 = 0; i0 < n; i0 += kMr) {
                const int64_t mr = n - i0 < kMr ? n - i0 : kMr;
                kMicro[mr](c + i0 * ldc + j0, ldc, a + i0 * lda + k0, lda, panel, kc, k0 > 0, m0, m1);
            }
        }
    }
}

}  // namespace avx512

#endif

}  // namespace minigpt
