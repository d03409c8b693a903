// Memory read bandwidth, the roofline of decoding (minigpt bench).
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

namespace minigpt {

// A read of floats [p, p + n), returning a value computed from them (kept
// observable, so that the reads are not optimised away).
using ReadPattern = std::function<float(const float* p, int64_t n)>;

// Memory read bandwidth in bytes/s: each thread reads its own contiguous half
// (third, ...) of a 1 GiB buffer in transparent huge pages, as 1, 2, 4 or 8
// streams side by side and as 4 prefetched streams, with eight independent
// 64-byte SIMD accumulators (a STREAM-like "read" kernel that is not limited by
// add latency), and with each of `more` (the decoding kernels' own reads, from
// minigpt bench); the fastest of `runs` rounds of every pattern. Checked against
// a plain OpenMP sum of 1 GiB (README).
double measure_read_bandwidth(int n_threads, int runs = 5, const std::vector<ReadPattern>& more = {});

}  // namespace minigpt
