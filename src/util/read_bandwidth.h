// Memory read bandwidth, the roofline of decoding (minigpt bench).
#pragma once

namespace minigpt {

// Memory read bandwidth in bytes/s: each thread sums its own contiguous half
// (third, ...) of a 1 GiB buffer in transparent huge pages with eight independent
// 64-byte SIMD accumulators (a STREAM-like "read" kernel that is not limited by add
// latency), best of `runs`. Checked against a plain OpenMP sum of 1 GiB (README).
double measure_read_bandwidth(int n_threads, int runs = 5);

}  // namespace minigpt
