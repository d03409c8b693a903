// Keys and values of every position seen so far, allocated once for the whole
// context, in chunks of kKVChunk (32) positions: within a chunk
// [layer][kv head][position][head_dim], so one head's keys are contiguous for 32
// positions (HeadRows, attention.h), and a token writes all of its keys and values
// into one chunk. With grouped key/value heads the cache holds n_head_kv heads,
// shared by the query heads.
//
// Why chunks: in 2 MiB pages, a cache laid out [layer][head][position] had the
// first token write one row into each of 288 blocks 256 KiB apart (124M, 1024
// positions), and the kernel zeroed ~72 MB of pages for it; in 4 KiB pages every
// row a token wrote or read cost a TLB miss of ~0.45 us on our VMs (12 us a layer
// for the writes alone). Chunked, the first token's rows share ~2 MiB of pages.
#pragma once
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "runtime/attention.h"
#include "util/resource_limits.h"
#include "util/uninit_vector.h"

namespace minigpt {

class KVCache {
public:
    KVCache(int64_t n_layer, int64_t n_head, int64_t n_ctx, int64_t head_dim)
        : n_layer_(n_layer), n_head_(n_head), n_ctx_(n_ctx), head_dim_(head_dim) {
        const uint64_t chunks = (uint64_t(n_ctx) + kKVChunk - 1) / kKVChunk;
        // Checked before allocating: 2 x layers x heads x positions (whole chunks) x head_dim floats.
        const uint64_t n = checked_product(
            {uint64_t(n_layer), uint64_t(n_head), chunks, uint64_t(kKVChunk), uint64_t(head_dim)}, "KV cache size");
        check_allocation(checked_product({n, 2 * sizeof(float)}, "KV cache size"),
                         "the KV cache (" + std::to_string(n_layer) + " layers x " + std::to_string(n_ctx) +
                             " positions x " + std::to_string(n_head * head_dim) + " wide, keys and values)",
                         "lower the context with -c/--ctx-size");
        chunk_floats_ = int64_t(n / chunks);
        // Not zeroed: a position is written before attention reads it, so a short
        // text faults in only the chunks it fills.
        k_.resize(size_t(n));
        v_.resize(size_t(n));
    }
    int64_t n_ctx() const { return n_ctx_; }
    // Layer l, head h: its keys / values, and the row of position `pos` to write.
    HeadRows k(int64_t l, int64_t h) const { return HeadRows{k_.data() + block(l, h), chunk_floats_}; }
    HeadRows v(int64_t l, int64_t h) const { return HeadRows{v_.data() + block(l, h), chunk_floats_}; }
    float* k_row(int64_t l, int64_t h, int64_t pos) { return k_.data() + row(l, h, pos); }
    float* v_row(int64_t l, int64_t h, int64_t pos) { return v_.data() + row(l, h, pos); }
    uint64_t bytes() const { return uint64_t(k_.size() + v_.size()) * sizeof(float); }

private:
    int64_t block(int64_t l, int64_t h) const { return (l * n_head_ + h) * kKVChunk * head_dim_; }
    int64_t row(int64_t l, int64_t h, int64_t pos) const {
        return pos / kKVChunk * chunk_floats_ + block(l, h) + pos % kKVChunk * head_dim_;
    }
    int64_t n_layer_, n_head_, n_ctx_, head_dim_;
    int64_t chunk_floats_ = 0;  // floats per chunk of kKVChunk positions: layers x heads x kKVChunk x head_dim
    UninitVector<float> k_, v_;
};

}  // namespace minigpt
