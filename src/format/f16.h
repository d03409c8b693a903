// IEEE half-precision <-> float conversion (F16C when compiled with it), and bfloat16
// (a float's upper 16 bits) to float.
#pragma once
#include <cstdint>
#include <cstring>
#if defined(__F16C__)
#include <immintrin.h>
#endif

namespace minigpt {

// Exact: a bfloat16 is the upper half of the float's bits.
inline float bf16_to_f32(uint16_t h) {
    const uint32_t bits = uint32_t(h) << 16;
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
}

inline float f16_to_f32(uint16_t h) {
#if defined(__F16C__)
    return _cvtsh_ss(h);
#else
    const uint32_t sign = uint32_t(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f, mant = h & 0x3ff, bits;
    if (exp == 0) {
        if (mant == 0) bits = sign;
        else {  // subnormal: normalise
            exp = 127 - 15 + 1;
            while (!(mant & 0x400)) { mant <<= 1; --exp; }
            bits = sign | (exp << 23) | ((mant & 0x3ff) << 13);
        }
    } else if (exp == 31) bits = sign | 0x7f800000u | (mant << 13);
    else bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
#endif
}

inline uint16_t f32_to_f16(float f) {
#if defined(__F16C__)
    return uint16_t(_cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT));
#else
    // Round-to-nearest-even, as F16C does.
    uint32_t x;
    std::memcpy(&x, &f, 4);
    const uint32_t sign = (x >> 16) & 0x8000;
    x &= 0x7fffffff;
    if (x >= 0x7f800000) return uint16_t(sign | 0x7c00 | (x > 0x7f800000 ? 0x200 : 0));
    if (x >= 0x477ff000) return uint16_t(sign | 0x7c00);  // overflow to inf
    if (x < 0x38800000) {                                 // subnormal or zero
        float a; std::memcpy(&a, &x, 4);
        return uint16_t(sign | uint32_t(__builtin_nearbyintf(a * 16777216.0f)));
    }
    const uint32_t mant_odd = (x >> 13) & 1;
    x += 0xc8000fff + mant_odd;  // rebias exponent and round
    return uint16_t(sign | (x >> 13));
#endif
}

}  // namespace minigpt
