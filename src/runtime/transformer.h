// The GPT-2 forward pass over a KV cache.
//
// A Transformer owns everything that changes while decoding (activations, the
// KV cache, scratch space), allocated once in the constructor for the context
// and batch sizes it is given; forward() allocates nothing. The model (weights)
// is shared and read-only, so several Transformers may run one Model.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "runtime/hooks.h"
#include "runtime/kv_cache.h"
#include "runtime/linear.h"
#include "runtime/model.h"
#include "runtime/profile.h"
#include "util/thread_pool.h"
#include "util/uninit_vector.h"

namespace minigpt {

struct TransformerOptions {
    int64_t n_ctx = 0;      // positions to keep in the cache; 0 = the model's context length
    int64_t n_batch = 512;  // most tokens run through the blocks at once (prefill is split into such batches)
    int n_threads = 1;
};

class Transformer {
public:
    Transformer(const Model& model, const TransformerOptions& opt);

    // Runs tokens[0..n) at positions pos()..pos()+n-1, appending their keys and
    // values to the cache. Returns the logits of the last token (n_vocab floats)
    // or, with all_logits, of every token ((n, n_vocab), row i for token i).
    // Throws if the context would overflow or an id is out of range.
    const float* forward(const int32_t* tokens, int64_t n, bool all_logits = false);

    void reset() { pos_ = 0; }           // forget the cache
    void truncate(int64_t n_pos);         // keep the first n_pos positions
    int64_t pos() const { return pos_; }
    int64_t n_ctx() const { return n_ctx_; }
    const Config& config() const { return model_.config(); }
    const Model& model() const { return model_; }
    uint64_t kv_cache_bytes() const { return cache_.bytes(); }
    int n_threads() const { return pool_.size(); }

    // Attaches observers/interventions (nullptr to detach). Not owned.
    void set_hooks(ForwardHooks* hooks);
    // Accumulates wall time per part into *profile (nullptr to stop). Not owned.
    void set_profile(Profile* profile) { profile_ = profile; }

private:
    // Runs one batch of n <= n_batch tokens; writes logits into `logits` when wanted.
    void forward_batch(const int32_t* tokens, int64_t n, bool all_logits, float* logits);
    void block(int64_t l, int64_t n);
    void attention(int64_t l, int64_t n);
    bool want(Hook h) const { return (hook_mask_ & hook_bit(h)) != 0; }
    void emit(Hook h, int layer, int head, float* data, int64_t rows, int64_t cols, int64_t ld);

    const Model& model_;
    const Config& cfg_;
    int64_t n_ctx_, n_batch_;
    int64_t pos_ = 0;
    ThreadPool pool_;
    KVCache cache_;
    LinearScratch scratch_;
    ForwardHooks* hooks_ = nullptr;
    uint32_t hook_mask_ = 0;
    Profile* profile_ = nullptr;

    // Activations, row-major, n_batch rows each; never zeroed (each row is written
    // before it is read), so only the rows a batch uses are ever faulted in.
    UninitVector<float> x_;       // (n_batch, d)      residual stream
    UninitVector<float> h_;       // (n_batch, d)      LayerNorm output
    UninitVector<float> qkv_;     // (n_batch, d + 2 d_kv)  q | k | v (d_kv = d with one kv head per head)
    UninitVector<float> z_;       // (n_batch, d)      heads' weighted values
    UninitVector<float> proj_;    // (n_batch, d)      attention / MLP output
    UninitVector<float> ff_;      // (n_batch, n_ff)   MLP hidden
    UninitVector<float> scores_;  // (max(n_batch, n_head), n_ctx): a head's scores, then pattern; decoding, every head's
    std::vector<float> logits_;      // (n_vocab)  last position
    std::vector<float> logits_all_;  // (rows, n_vocab) grown on first all_logits request
};

}  // namespace minigpt
