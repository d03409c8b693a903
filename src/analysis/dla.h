// Direct logit attribution (DLA), with TransformerLens's conventions.
//
// The residual stream entering the final LayerNorm at a position p is a sum of
// components, each written by one part of the model:
//
//   x_p = embed + pos_embed + Σ_l ( Σ_h z_{l,h} · W_O[l,h]  +  b_O[l] )  +  Σ_l mlp_l
//
// where z_{l,h} is head h's weighted values (hook_z) at p, W_O[l,h] the rows of
// layer l's output projection that multiply them, b_O[l] the projection bias
// ("L{l}.attn_bias") and mlp_l the MLP output, its bias included ("L{l}.mlp").
// The final LayerNorm is affine once its scale σ_p = sqrt(var(x_p) + eps) is
// frozen at the value of the real run, so the logit of token t splits exactly:
//
//   logit_t = Σ_c (c - mean(c)) / σ_p · (w_f ⊙ U_t)   +   b_f · U_t
//
// (w_f, b_f: the final LayerNorm's weight and bias; U_t: row t of the LM head,
// the token embedding when tied). The last term is the component
// "ln_final_bias". With a contrast token B, U_t is replaced by U_A - U_B and
// the components sum to logit_A - logit_B.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "runtime/hooks.h"
#include "runtime/model.h"

namespace minigpt {

// Keeps, for every forward call, the last row of each layer's hook_z and
// hook_mlp_out and of the last layer's hook_resid_post: everything DLA needs
// for the position whose next token the call predicts. To attribute an
// earlier position p, run the prefix tokens[0..p] (causal: nothing after p
// changes it).
class DlaCapture : public ForwardHooks {
public:
    explicit DlaCapture(const Config& cfg);

    uint32_t wanted() const override {
        return hook_bit(Hook::Z) | hook_bit(Hook::MlpOut) | hook_bit(Hook::ResidPost);
    }
    void on(const HookView& view) override;

    int64_t position() const { return pos_; }  // the captured position (-1 before any forward call)
    const float* z(int64_t layer) const { return z_.data() + layer * d_; }      // (d) heads concatenated
    const float* mlp(int64_t layer) const { return mlp_.data() + layer * d_; }  // (d)
    const float* resid_final() const { return resid_.data(); }                  // (d) input of the final LayerNorm

private:
    int64_t n_layer_, d_;
    int64_t pos_ = -1;
    std::vector<float> z_, mlp_, resid_;
};

// What is attributed: the logit of `token`, or with contrast >= 0 the logit
// difference token - contrast.
struct DlaTarget {
    int32_t token = -1;
    int32_t contrast = -1;
};

struct DlaResult {
    int64_t n_layer = 0, n_head = 0;
    int64_t pos = -1;                 // the position attributed
    DlaTarget target;
    double embed = 0, pos_embed = 0;  // token and position embeddings
    std::vector<double> heads;        // (n_layer * n_head): index layer * n_head + head
    std::vector<double> attn_bias;    // (n_layer)
    std::vector<double> mlp;          // (n_layer)
    double ln_final_bias = 0;
    double ln_scale = 0;              // σ_p, the frozen final LayerNorm scale

    double total() const;  // Σ of every component: the logit (difference) up to rounding
    // (name, contribution) in a fixed order: embed, pos_embed, then per layer
    // L{l}H0..L{l}H{H-1}, L{l}.attn_bias, L{l}.mlp, and last ln_final_bias.
    std::vector<std::pair<std::string, double>> components() const;
    // The k heads of largest |contribution|, largest first (ties: lower index first).
    std::vector<int64_t> top_heads(int64_t k) const;
};

// Attributes the position held in `cap` (whose token id is token_at_pos).
// Computed in double from the f32 activations; weights of any stored type are
// dequantized row by row. Throws if a token id is outside the vocabulary.
DlaResult direct_logit_attribution(const Model& model, const DlaCapture& cap, int32_t token_at_pos,
                                   const DlaTarget& target);

}  // namespace minigpt
