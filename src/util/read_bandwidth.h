// Memory read bandwidth, the roofline of decoding (minigpt bench).
#pragma once

namespace minigpt {

// Memory read bandwidth in bytes/s: each thread sums its own contiguous half
// (third, ...) of a 1 GiB buffer in transparent huge pages, as 1, 2, 4 or 8
// streams side by side and as 4 prefetched streams, with eight independent
// 64-byte SIMD accumulators (a STREAM-like "read" kernel that is not limited by
// add latency); the fastest of `runs` rounds of every pattern. Checked against a
// plain OpenMP sum of 1 GiB (README).
double measure_read_bandwidth(int n_threads, int runs = 5);

}  // namespace minigpt
