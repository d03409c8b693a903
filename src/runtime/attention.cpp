#include "runtime/attention.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>

#include "kernels/kernels.h"
#include "runtime/kv_cache.h"
#include "util/thread_pool.h"

namespace minigpt {

namespace {

// Runs fn(i0, i1) over the causal split of the n rows (see causal_rows).
void for_rows(int64_t n, int64_t pos0, ThreadPool* pool, const std::function<void(int64_t, int64_t)>& fn) {
    if (!pool || pool->size() == 1 || n < kMinRowsToSplit) {
        fn(0, n);
        return;
    }
    // A few ranges per thread, claimed dynamically, each with the same share of keys.
    const int tasks = 4 * pool->size();
    pool->for_each(tasks, [&](int64_t task, int) {
        int64_t i0, i1;
        causal_rows(n, pos0, int(task), tasks, &i0, &i1);
        if (i0 < i1) fn(i0, i1);
    });
}

// Query rows go through the rows kernels kRowBlock at a time: together over the keys
// the block's first row sees, then each row alone over the few more it sees. Every
// row's numbers are those of the single-row kernels over the same keys in the same
// order (kernels.h), so a batch still equals its rows one at a time, bit for bit.
// At one row at a time, a 512-token prefill spent ~10 ms of every layer here.
constexpr int64_t kRowBlock = 8;

// fn(j, len, rows) over positions [from, to) of a head's keys or values, a piece per
// KV-cache chunk: `rows` is position j's row, followed by the piece's other len - 1.
template <typename Fn>
void for_chunk_pieces(HeadRows r, int64_t hd, int64_t from, int64_t to, Fn fn) {
    for (int64_t j = from; j < to;) {
        const int64_t in_chunk = j % kKVChunk, len = std::min(kKVChunk - in_chunk, to - j);
        fn(j, len, r.base + j / kKVChunk * r.chunk_stride + in_chunk * hd);
        j += len;
    }
}

}  // namespace

void causal_rows(int64_t n, int64_t pos0, int index, int count, int64_t* begin, int64_t* end) {
    // Keys visible to rows [0, i): pos0*i + i(i+1)/2. Boundary t/count of the
    // total, solved for i and rounded to a multiple of 8 rows.
    auto boundary = [&](int t) -> int64_t {
        if (t <= 0) return 0;
        if (t >= count) return n;
        const double total = double(pos0) * double(n) + 0.5 * double(n) * double(n + 1);
        const double target = total * t / count, b = double(pos0) + 0.5;
        const double i = -b + std::sqrt(b * b + 2.0 * target);
        const int64_t r = (int64_t(i + 0.5) + 4) / 8 * 8;
        return r < 0 ? 0 : r > n ? n : r;
    };
    *begin = boundary(index);
    *end = boundary(index + 1);
}

void attention_scores(float* scores, const float* q, int64_t ldq, HeadRows k, int64_t n, int64_t pos0, int64_t hd,
                      ThreadPool* pool) {
    const int64_t T = pos0 + n;
    const float scale = float(1.0 / std::sqrt(double(hd)));
    const float neg_inf = -std::numeric_limits<float>::infinity();
    const KernelTable& kt = kernels();
    for_rows(n, pos0, pool, [&](int64_t i0, int64_t i1) {
        for (int64_t b = i0; b < i1; b += kRowBlock) {
            const int64_t rows = std::min(kRowBlock, i1 - b), shared = pos0 + b + 1;
            for_chunk_pieces(k, hd, 0, shared, [&](int64_t j, int64_t len, const float* kj) {
                kt.attn_scores_rows(scores + b * T + j, T, q + b * ldq, ldq, rows, kj, len, hd, scale);
            });
            for (int64_t i = b; i < b + rows; ++i) {
                float* row = scores + i * T;
                const int64_t visible = pos0 + i + 1;
                for_chunk_pieces(k, hd, shared, visible, [&](int64_t j, int64_t len, const float* kj) {
                    kt.attn_scores(row + j, q + i * ldq, kj, len, hd, scale);
                });
                for (int64_t j = visible; j < T; ++j) row[j] = neg_inf;
            }
        }
    });
}

void attention_softmax(float* scores, int64_t n, int64_t pos0, ThreadPool* pool) {
    const int64_t T = pos0 + n;
    const KernelTable& kt = kernels();
    for_rows(n, pos0, pool, [&](int64_t i0, int64_t i1) {
        for (int64_t i = i0; i < i1; ++i) {
            float* row = scores + i * T;
            const int64_t visible = pos0 + i + 1;
            kt.softmax(row, visible);
            for (int64_t j = visible; j < T; ++j) row[j] = 0.0f;
        }
    });
}

void attention_values(float* z, int64_t ldz, const float* p, HeadRows v, int64_t n, int64_t pos0, int64_t hd,
                      ThreadPool* pool) {
    const int64_t T = pos0 + n;
    const KernelTable& kt = kernels();
    for_rows(n, pos0, pool, [&](int64_t i0, int64_t i1) {
        for (int64_t b = i0; b < i1; b += kRowBlock) {
            const int64_t rows = std::min(kRowBlock, i1 - b), shared = pos0 + b + 1;
            // Piece after piece, each continuing the sums of the last: the same additions
            // in the same order as over one contiguous run of rows.
            for_chunk_pieces(v, hd, 0, shared, [&](int64_t j, int64_t len, const float* vj) {
                kt.attn_values_rows(z + b * ldz, ldz, p + b * T + j, T, rows, vj, len, hd, j > 0);
            });
            for (int64_t i = b + 1; i < b + rows; ++i)
                for_chunk_pieces(v, hd, shared, pos0 + i + 1, [&](int64_t j, int64_t len, const float* vj) {
                    kt.attn_values(z + i * ldz, p + i * T + j, vj, len, hd, true);
                });
        }
    });
}

// Chunk by chunk across the heads, not head by head: within a chunk of the cache one
// head's keys (values) follow the previous head's, so a thread's heads are one stream
// through memory per chunk instead of a short one per head and chunk. Decoding reads
// the cache from memory (each token's weights flush it from every cache level), and
// in isolation a 124M layer at position 72 took 24 us against 31 head by head (one
// thread; 19 against 25.5 at two, each with half the heads). Each head's scores and
// sums still run over its keys in order through the same kernels: the same numbers.
void attention_decode(float* z, const float* q, const KVCache& cache, int64_t layer, int64_t h0, int64_t h1,
                      int64_t group, int64_t T, int64_t hd, float* scores) {
    const float scale = float(1.0 / std::sqrt(double(hd)));
    const KernelTable& kt = kernels();
    auto piece = [&](HeadRows r, int64_t j) { return r.base + j / kKVChunk * r.chunk_stride; };
    for (int64_t j = 0; j < T; j += kKVChunk) {
        const int64_t len = std::min(kKVChunk, T - j);
        for (int64_t h = h0; h < h1; ++h)
            kt.attn_scores(scores + (h - h0) * T + j, q + h * hd, piece(cache.k(layer, h / group), j), len, hd, scale);
    }
    for (int64_t h = h0; h < h1; ++h) kt.softmax(scores + (h - h0) * T, T);
    for (int64_t j = 0; j < T; j += kKVChunk) {
        const int64_t len = std::min(kKVChunk, T - j);
        for (int64_t h = h0; h < h1; ++h)
            kt.attn_values(z + h * hd, scores + (h - h0) * T + j, piece(cache.v(layer, h / group), j), len, hd, j > 0);
    }
}

}  // namespace minigpt
