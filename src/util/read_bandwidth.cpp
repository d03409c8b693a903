// The memory read bandwidth probe of `minigpt bench` (util/read_bandwidth.h). In
// the library, not in src/cli, so that it is compiled at -O3 like the kernels it
// is the roofline for (the command-line files are built at -O1).
#include "util/read_bandwidth.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <numeric>
#include <utility>
#include <stdexcept>
#include <vector>

#include <sys/mman.h>

#include "util/thread_pool.h"

namespace minigpt {

namespace {
double now_s() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// (streams, prefetch) pairs the probe tries.
constexpr std::pair<int, bool> kProbePatterns[] = {{1, false}, {2, false}, {4, false}, {8, false}, {4, true}};

// The sum of p[0..n) read as `streams` equal pieces side by side, 512 bytes of each
// in turn, into eight independent 64-byte accumulators (512-bit registers, or pairs
// of 256-bit ones): the adds never wait on each other, so only memory limits the
// loop. The pieces' tails (under 512 bytes each) and the remainder are added last.
float read_streams(const float* p, int64_t n, int streams, bool prefetch) {
    typedef float v16 __attribute__((vector_size(64), aligned(4)));
    constexpr int64_t kStep = 128;  // floats per stream per turn: 512 bytes
    const int64_t piece = n / streams, steps = piece / kStep;
    v16 acc[8] = {};
    for (int64_t i = 0; i < steps * kStep; i += kStep)
        for (int s = 0; s < streams; ++s) {
            const float* q = p + s * piece + i;
            if (prefetch)
                for (int k = 0; k < 8; ++k) __builtin_prefetch(reinterpret_cast<const char*>(q) + 2048 + 64 * k, 0, 0);
            for (int k = 0; k < 8; ++k) acc[k] += *reinterpret_cast<const v16*>(q + 16 * k);
        }
    float s = 0;
    for (int t = 0; t < streams; ++t)
        for (int64_t i = t * piece + steps * kStep; i < (t + 1) * piece; ++i) s += p[i];
    for (int64_t i = streams * piece; i < n; ++i) s += p[i];
    for (int k = 1; k < 8; ++k) acc[0] += acc[k];
    for (int k = 0; k < 16; ++k) s += acc[0][k];
    return s;
}
}  // namespace

double measure_read_bandwidth(int n_threads, int runs, const std::vector<ReadPattern>& more) {
    // 1 GiB, far beyond any last-level cache of these machines, in transparent huge
    // pages where the kernel gives them (fewer TLB misses: the probe should read at
    // least as fast as anything else on the machine, or the roofline flatters us).
    const size_t bytes = size_t(1) << 30, n = bytes / sizeof(float);
    void* mem = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) throw std::runtime_error("bench: cannot map 1 GiB for the bandwidth probe");
    ::madvise(mem, bytes, MADV_HUGEPAGE);  // a hint; 4 KiB pages otherwise
    float* buf = static_cast<float*>(mem);
    ThreadPool pool(n_threads);
    // One contiguous part per thread, touched first by the thread that reads it.
    auto part = [&](int64_t t, int64_t* a, int64_t* b) { ThreadPool::chunk(int64_t(n), 4096, int(t), n_threads, a, b); };
    pool.for_each(n_threads, [&](int64_t t, int) {
        int64_t a, b;
        part(t, &a, &b);
        std::memset(buf + a, 0, size_t(b - a) * sizeof(float));
    });
    // Each thread reads its part as 1, 2, 4 or 8 streams side by side (the part cut
    // into equal pieces, MiB apart), plain or with a non-temporal prefetch 2 KiB
    // ahead, and the roofline is the fastest of them all: on this project's Zen 5 VM
    // one stream read ~37 GB/s at one thread, two ~40 and eight ~42, and the
    // decoding kernels, which read four prefetched streams, beat the one-stream
    // probe; a roofline must not be beaten. `more` adds the caller's patterns.
    std::vector<ReadPattern> patterns;
    for (const auto& pattern : kProbePatterns) {
        const int streams = pattern.first;
        const bool prefetch = pattern.second;
        patterns.push_back([streams, prefetch](const float* p, int64_t len) { return read_streams(p, len, streams, prefetch); });
    }
    patterns.insert(patterns.end(), more.begin(), more.end());
    std::vector<float> sums(size_t(n_threads), 0.f);
    double best = 0;
    for (int r = 0; r < runs; ++r)
        for (const ReadPattern& read : patterns) {
            const double t0 = now_s();
            pool.for_each(n_threads, [&](int64_t t, int) {
                int64_t a, b;
                part(t, &a, &b);
                sums[size_t(t)] += read(buf + a, b - a);
            });
            const double dt = now_s() - t0;
            best = std::max(best, double(bytes) / dt);
        }
    // Keep the sums observable so the loop is not optimised away.
    if (std::accumulate(sums.begin(), sums.end(), 0.0) != 0.0) best += 0;
    ::munmap(mem, bytes);
    return best;
}

}  // namespace minigpt
