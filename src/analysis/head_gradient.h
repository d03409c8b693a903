// Gradient head importance (Michel, Levy and Neubig 2019, "Are Sixteen Heads
// Really Better than One?"), by a backward pass written here.
//
// A mask ξ_h multiplies every head's z_h (blocks.L.attn.hook_z, its weighted
// values before the output projection); ξ = 1 is the plain model. For a window
// w whose loss is the mean next-token NLL over its scored positions,
//   L_w = (1 / S_w) Σ_{scored r} -log softmax(logits_r)[target_r],
//   ∂L_w/∂ξ_h = Σ_{t, i} ∂L_w/∂z_h[t, i] · z_h[t, i]   (t: positions, i: the head's d_head columns),
// since z_h enters the rest of the network only as ξ_h z_h. Over windows:
//   grad_h = mean_w ∂L_w/∂ξ_h   (signed: -grad_h is the first-order estimate of
//            what zero-ablating the head alone changes, i.e. attribution patching),
//   importance_h = mean_w |∂L_w/∂ξ_h|.
//
// One forward and one backward per window, not one run per head. The forward
// is the runtime's own (Transformer with hooks), so the loss is exactly the one
// `perplexity` computes; hooks copy what the backward needs, per layer: the
// residual stream entering the block and after attention (for the LayerNorms'
// backward), q|k|v (attention), z (the heads' gradients) and the MLP's
// pre-activation (GELU): (3 d + (d + 2 d_kv) + n_ff) floats per token and layer,
// 6 d + n_ff without grouped key/value heads (d_kv = d). LayerNorm
// outputs, GELU outputs and the (T, T) attention patterns are recomputed rather
// than kept (the patterns would be n_layer · n_head · T² floats). The backward
// (kernels/backward.h) runs through the LM head and the final LayerNorm (logits
// a chunk of rows at a time, never (T, n_vocab) at once), then down every block:
// MLP, ln_2, the attention output projection (where dL/dz gives the heads'
// gradients), attention with its softmax, q|k|v and ln_1. Gradients with
// respect to the weights are never formed.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "eval/perplexity.h"
#include "kernels/backward.h"
#include "runtime/linear.h"
#include "runtime/model.h"
#include "runtime/transformer.h"
#include "util/thread_pool.h"

namespace minigpt {

struct WindowGradient {
    double loss = 0;           // L_w: mean NLL over the scored positions
    int64_t n_scored = 0;
    std::vector<double> grad;  // ∂L_w/∂ξ_h, index layer * n_head + head
};

class ActivationCapture;

// The forward and backward of one window at a time, for windows of up to
// max_tokens fed tokens; every buffer is allocated once, in the constructor.
class HeadGradient {
public:
    HeadGradient(const Model& model, int64_t max_tokens, int n_threads);
    ~HeadGradient();

    // tokens[0..n) at positions 0..n-1 from an empty cache; rows first_scored..n-1
    // are scored, row r predicting targets[r - first_scored].
    WindowGradient window(const int32_t* tokens, int64_t n, int64_t first_scored, const int32_t* targets);

    // Bytes of the saved activations and the backward's buffers (not the
    // Transformer's own, nor the weights).
    uint64_t buffer_bytes() const;

private:
    double lm_head_backward(int64_t n, int64_t first_scored, const int32_t* targets);
    void block_backward(int64_t l, int64_t n, double* grad);
    void attention_backward_heads(int64_t l, int64_t n);

    const Model& model_;
    const Config& cfg_;
    int64_t max_tokens_;
    Transformer tf_;
    std::unique_ptr<ActivationCapture> capture_;
    ThreadPool pool_;  // the backward's (the Transformer's own is private; idle workers of one sleep while the other runs)
    LinearScratch linear_scratch_;
    MatmulBackwardScratch mm_scratch_;

    std::vector<float> dx_;       // (T, d)     dL/d residual stream
    std::vector<float> dh_;       // (T, d)     dL/d a LayerNorm's output, dL/dz
    std::vector<float> dwide_;    // (T, max(n_ff, d + 2 d_kv))  dL/d MLP hidden, dL/d q|k|v
    std::vector<float> hf_;       // (chunk, d) final LayerNorm output of a chunk of rows
    std::vector<float> logits_;   // (chunk, n_vocab) its logits, then their gradient
    std::vector<float> attn_scratch_;  // (threads, 2 T²)
};

struct HeadGradientReport {
    int64_t n_layer = 0, n_head = 0;
    int64_t windows = 0, tokens_scored = 0;
    double mean_loss = 0;             // mean over windows of L_w
    std::vector<double> grad;         // mean_w ∂L_w/∂ξ_h
    std::vector<double> importance;   // mean_w |∂L_w/∂ξ_h|
    uint64_t buffer_bytes = 0;
};

// Every window of `tokens` as compute_perplexity reads it (opt.bos_first puts
// BOS first; a window feeds n_tokens() - 1 tokens and scores its targets
// first_target..end-1). progress(done, total) after each window.
HeadGradientReport run_head_gradient(const Model& model, const std::vector<int32_t>& tokens,
                                     const std::vector<Window>& windows, const PerplexityOptions& opt, int n_threads,
                                     const std::function<void(int64_t, int64_t)>& progress = nullptr);

// Spearman's rank correlation of a and b (same length >= 2): Pearson's
// correlation of their ranks, tied values given the mean of their ranks; NaN
// when either is constant.
double spearman_correlation(const std::vector<double>& a, const std::vector<double>& b);

}  // namespace minigpt
