#include "runtime/kv_cache.h"

#include <algorithm>
#include <sys/mman.h>
#include <unistd.h>

namespace minigpt {

void KVCache::prepare(int64_t end) {
    if (end <= prepared_) return;
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23  // Linux 5.14
#endif
    // 16 KiB of each head's block at a time (64 positions at head_dim 64): fewer calls
    // per page cost less (4 KiB: 2.7 us a page, 64 KiB: 0.9), more maps in pages a
    // short text never writes.
    const int64_t row_bytes = head_dim_ * int64_t(sizeof(float));
    const int64_t chunk = std::max<int64_t>(1, (int64_t(16) << 10) / row_bytes);
    const int64_t new_end = std::min(n_ctx_, (end + chunk - 1) / chunk * chunk);
    const uintptr_t page = uintptr_t(::sysconf(_SC_PAGESIZE));
    for (float* base : {k_.data(), v_.data()})
        for (int64_t b = 0; b < n_layer_ * n_head_; ++b) {
            const auto first = reinterpret_cast<uintptr_t>(base + (b * n_ctx_ + prepared_) * head_dim_) & ~(page - 1);
            const auto last = reinterpret_cast<uintptr_t>(base + (b * n_ctx_ + new_end) * head_dim_);
            // A hint: where it fails (an older kernel) the writes fault the pages in.
            ::madvise(reinterpret_cast<void*>(first), last - first, MADV_POPULATE_WRITE);
        }
    prepared_ = new_end;
}

}  // namespace minigpt
