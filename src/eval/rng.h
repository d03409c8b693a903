// Our own seeded random number generator, so a seed gives the same draws (and
// the same generated text) on every machine, compiler and standard library:
// std::mt19937 is portable but std::uniform_real_distribution is not.
//
// xoshiro256** (Blackman & Vigna, https://prng.di.unimi.it/xoshiro256starstar.c)
// with its state filled by SplitMix64 from the 64-bit seed, as the authors
// recommend. uniform() takes the top 24 bits, so every float in [0,1) it
// returns is a multiple of 2^-24 and exactly representable.
#pragma once
#include <chrono>
#include <cstdint>

namespace minigpt {

// One step of SplitMix64 (http://prng.di.unimi.it/splitmix64.c).
inline uint64_t splitmix64(uint64_t& state) {
    uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

class Rng {
public:
    explicit Rng(uint64_t seed) { reseed(seed); }

    void reseed(uint64_t seed) {
        uint64_t sm = seed;
        for (uint64_t& w : s_) w = splitmix64(sm);
    }

    // Next 64 random bits (xoshiro256**).
    uint64_t next() {
        const uint64_t result = rotl(s_[1] * 5, 7) * 9;
        const uint64_t t = s_[1] << 17;
        s_[2] ^= s_[0];
        s_[3] ^= s_[1];
        s_[1] ^= s_[2];
        s_[0] ^= s_[3];
        s_[2] ^= t;
        s_[3] = rotl(s_[3], 45);
        return result;
    }

    // Uniform in [0, 1): the top 24 bits scaled by 2^-24.
    float uniform() { return float(next() >> 40) * (1.0f / 16777216.0f); }

private:
    static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
    uint64_t s_[4];
};

// A seed for runs that gave none: the clock's nanoseconds, mixed. Printed by the
// CLI (--stats) so the run can be repeated with --seed.
inline uint64_t seed_from_time() {
    uint64_t t = uint64_t(std::chrono::high_resolution_clock::now().time_since_epoch().count());
    return splitmix64(t) & 0xffffffffULL;  // 32 bits: short enough to retype
}

}  // namespace minigpt
