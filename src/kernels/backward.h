// Backward twins of the forward kernels (ops.h, kernels.h, runtime/attention.h),
// laid out as llm.c's train_gpt2.c lays its own: each takes what its forward
// saw (its input, or what the forward computed from it) and the gradient of
// the loss with respect to its output, and gives the gradient with respect to
// its input. Only gradients with respect to activations are computed: nothing
// here needs dW (the head-gradient pass differentiates with respect to a mask
// on the heads, not the weights), which halves the work of every matmul.
//
// All f32, row-major; reductions over a row are accumulated in double. The
// accumulate-or-overwrite rule is stated on each function ("+=" where a
// gradient flows into a residual stream or several paths meet, "=" otherwise).
#pragma once
#include <cstdint>
#include <vector>

#include "format/tensor.h"

namespace minigpt {

class ThreadPool;

// LayerNorm. Forward (ops.h layer_norm): y = x̂ ⊙ w + b, x̂ = (x - μ) · rstd,
// rstd = 1 / sqrt(var + eps), biased variance. Backward, per row:
//   g = dy ⊙ w;   dx += rstd · (g - mean(g) - x̂ · mean(g ⊙ x̂))
// x, dy, dx: (rows, dim); μ and rstd are recomputed from x in double, as the
// forward computes them. dx must not alias dy.
void layernorm_backward(float* dx, const float* dy, const float* x, int64_t rows, int64_t dim, const float* w,
                        float eps);

// GPT-2's tanh GELU. Forward: y = 0.5 x (1 + tanh u), u = sqrt(2/pi) (x + 0.044715 x³).
// Backward: dx = dy · (0.5 (1 + tanh u) + 0.5 x (1 - tanh² u) sqrt(2/pi) (1 + 3 · 0.044715 x²)).
// x: the forward's input (n); dx = (overwritten; may alias dy).
void gelu_backward(float* dx, const float* x, const float* dy, int64_t n);

// Softmax over one row. Forward: p = softmax(s). Backward: ds = p ⊙ (dp - Σ_j p_j dp_j).
// p, dp, ds: (n); ds = (overwritten; may alias dp). Masked entries (p = 0) get 0.
void softmax_backward(float* ds, const float* p, const float* dp, int64_t n);

// Scratch floats attention_backward needs for T positions (the pattern and its gradient).
inline int64_t attention_backward_scratch(int64_t T) { return 2 * T * T; }

// Causal self-attention of one head over T positions. Forward (runtime/attention.h):
//   s = q kᵀ · scale (T, T), s_ij = -inf for j > i;  p = softmax of each row;  z = p v.
// Backward:
//   dp = dz vᵀ;  dv += pᵀ dz;  ds = softmax_backward(p, dp);  dq += ds k · scale;  dk += dsᵀ q · scale.
// q, k, v: (T, hd) rows ld_qkv floats apart (they may be interleaved in one qkv
// buffer); dz: (T, hd) rows ld_z apart; dq, dk, dv: (T, hd) rows ld_d apart, "+="
// (heads sharing keys and values add up). p is recomputed from q and k rather than
// saved: it is the largest activation ((T, T) per head and layer). scratch:
// attention_backward_scratch(T) floats. Single-threaded (run one head per thread).
void attention_backward(float* dq, float* dk, float* dv, int64_t ld_d, const float* dz, int64_t ld_z, const float* q,
                        const float* k, const float* v, int64_t ld_qkv, int64_t T, int64_t hd, float scale,
                        float* scratch);

// Scratch of matmul_backward: dequantized rows of W (f16, q8_0).
struct MatmulBackwardScratch {
    static constexpr int64_t kTileRows = 256;  // rows of W dequantized per step
    std::vector<float> tile;                   // (kTileRows, W.cols)
};

// Linear layer (runtime/linear.h: out = in · Wᵀ + b, W (rows, cols) of any stored type).
// Backward with respect to the input only:  din (n, W.cols) += dout (n, W.rows) · W.
// f32 W is read in place by sgemm; f16 and q8_0 rows are dequantized kTileRows
// at a time (the exact weights: the gradient is that of the f32 model with the
// dequantized weights; q8_0's rounding of the activations has no gradient).
// The columns of din are split over the pool's threads (pool may be null), each
// calling single-threaded sgemm on its columns of W. Used for the LM head as well (dh = dlogits · E).
void matmul_backward(float* din, const float* dout, int64_t n, const Matrix& w, MatmulBackwardScratch& scratch,
                     ThreadPool* pool);

// Cross-entropy of softmax(logits) against `target`, and its backward in place:
//   nll = -log softmax(l)[target]  (returned, computed in double with the max subtracted);
//   l   = scale · (softmax(l) - onehot(target))   (the gradient of scale · nll).
// logits: (V), overwritten. scale is 1 / (positions averaged over).
double crossentropy_softmax_backward(float* logits, int64_t V, int32_t target, float scale);

}  // namespace minigpt
