// Keys and values of every position seen so far, allocated once for the whole
// context. Layout [layer][kv head][position][head_dim]: one head's keys are
// contiguous, so attention reads them as one (T, head_dim) matrix. With grouped
// key/value heads the cache holds n_head_kv heads, shared by the query heads.
#pragma once
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "util/resource_limits.h"
#include "util/uninit_vector.h"

namespace minigpt {

class KVCache {
public:
    KVCache(int64_t n_layer, int64_t n_head, int64_t n_ctx, int64_t head_dim)
        : n_layer_(n_layer), n_head_(n_head), n_ctx_(n_ctx), head_dim_(head_dim) {
        // Checked before allocating: 2 x layers x heads x context x head_dim floats.
        const uint64_t n = checked_product({uint64_t(n_layer), uint64_t(n_head), uint64_t(n_ctx), uint64_t(head_dim)},
                                           "KV cache size");
        check_allocation(checked_product({n, 2 * sizeof(float)}, "KV cache size"),
                         "the KV cache (" + std::to_string(n_layer) + " layers x " + std::to_string(n_ctx) +
                             " positions x " + std::to_string(n_head * head_dim) + " wide, keys and values)",
                         "lower the context with -c/--ctx-size");
        // Not zeroed: a position is written before attention reads it, so a short
        // text faults in only the pages of the positions it fills (see prepare()).
        k_.resize(size_t(n));
        v_.resize(size_t(n));
    }
    // Maps in the pages positions [0, end) will be written to, ahead of the writes,
    // a chunk of positions at a time. The cache is in 4 KiB pages, written a few
    // hundred bytes at a time in each head's block: in 2 MiB pages the first token
    // zeroed ~72 MB (124M, 1024 positions), while a fault per 4 KiB page costs
    // ~12 us on our VMs, 0.35 ms a token; MADV_POPULATE_WRITE over 16 KiB of each
    // block costs ~1.3 us a page.
    void prepare(int64_t end);
    int64_t n_ctx() const { return n_ctx_; }
    // (n_ctx, head_dim) block of layer l, head h.
    float* k(int64_t l, int64_t h) { return k_.data() + (l * n_head_ + h) * n_ctx_ * head_dim_; }
    float* v(int64_t l, int64_t h) { return v_.data() + (l * n_head_ + h) * n_ctx_ * head_dim_; }
    uint64_t bytes() const { return uint64_t(k_.size() + v_.size()) * sizeof(float); }

private:
    int64_t n_layer_, n_head_, n_ctx_, head_dim_;
    int64_t prepared_ = 0;  // positions whose pages prepare() has mapped
    UninitVectorSmallPages<float> k_, v_;
};

}  // namespace minigpt
