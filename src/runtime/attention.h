// Causal self-attention of one head, in three steps so that the scores and the
// pattern can be observed between them (hooks.h).
//
// Every query row goes through the SIMD kernels of kernels.h, over exactly the
// keys it sees. A batch splits its query rows between the pool's threads (pool
// may be null); the split gives every thread the same share of the causal triangle.
#pragma once
#include <cstdint>

namespace minigpt {

class KVCache;
class ThreadPool;

// Positions per chunk of the KV cache (kv_cache.h): one head's keys (or values)
// are contiguous within a chunk, and chunks lie chunk_stride floats apart.
constexpr int64_t kKVChunk = 32;

// One head's keys or values: position p's hd floats at
// base + (p / kKVChunk) * chunk_stride + (p % kKVChunk) * hd.
struct HeadRows {
    const float* base;
    int64_t chunk_stride;
    // (T, hd) rows one after another.
    static HeadRows contiguous(const float* p, int64_t hd) { return HeadRows{p, kKVChunk * hd}; }
};

// Fewer query rows than this run on one thread (a split would cost more than it
// saves); callers with many heads then split the heads instead.
constexpr int64_t kMinRowsToSplit = 16;

// scores (n, T) row i = q_i · k_j / sqrt(hd) for j <= pos0 + i, -inf after (causal mask).
// q: n rows of hd floats, ldq apart; k: T rows; T = pos0 + n.
void attention_scores(float* scores, const float* q, int64_t ldq, HeadRows k, int64_t n, int64_t pos0, int64_t hd,
                      ThreadPool* pool = nullptr);

// Row-wise max-subtracted softmax of the causal part; masked entries become 0.
void attention_softmax(float* scores, int64_t n, int64_t pos0, ThreadPool* pool = nullptr);

// z (n, hd) row i = sum_j p_ij v_j; p: (n, T); v: T rows; z rows ldz apart.
void attention_values(float* z, int64_t ldz, const float* p, HeadRows v, int64_t n, int64_t pos0, int64_t hd,
                      ThreadPool* pool = nullptr);

// Rows [begin, end) of n query rows at positions pos0.. that thread `index` of
// `count` takes: contiguous ranges with equal numbers of visible keys.
// Decoding: one new query row (position T - 1) of query heads [h0, h1) of `layer`,
// head h reading key/value head h / group of the cache, into z (head h at z + h * hd,
// q likewise), with scores as (h1 - h0) rows of T. The same numbers as
// attention_scores, _softmax and _values with n = 1, head by head.
void attention_decode(float* z, const float* q, const KVCache& cache, int64_t layer, int64_t h0, int64_t h1,
                      int64_t group, int64_t T, int64_t hd, float* scores);

void causal_rows(int64_t n, int64_t pos0, int index, int count, int64_t* begin, int64_t* end);

}  // namespace minigpt
