// The logit lens (nostalgebraist 2020): what each layer would predict if the
// model stopped there. The residual stream leaving block L
// (blocks.L.hook_resid_post) goes through the final LayerNorm and the
// unembedding, as the last layer's does for the real logits:
//
//   lens_L = LN_f(resid_post_L) · Eᵀ          (n_vocab logits per layer)
//
// so the last layer's lens equals the model's own logits. A ForwardHooks that
// keeps the last row of each layer's resid_post (the position whose next
// token is being chosen); compute() then runs the n_layer rows at once.
#pragma once
#include <cstdint>
#include <vector>

#include "runtime/hooks.h"
#include "runtime/linear.h"
#include "runtime/model.h"

namespace minigpt {

class LogitLens : public ForwardHooks {
public:
    explicit LogitLens(const Model& model);

    uint32_t wanted() const override { return hook_bit(Hook::ResidPost); }
    void on(const HookView& view) override;

    // Logits (n_layer, n_vocab) of the last position of the latest forward call.
    const std::vector<float>& compute();
    int64_t position() const { return pos_; }  // that position (-1 before any forward call)

private:
    const Model& model_;
    int64_t n_layer_, d_, n_vocab_;
    int64_t pos_ = -1;
    std::vector<float> resid_;   // (n_layer, d) last row of each layer
    std::vector<float> normed_;  // (n_layer, d)
    std::vector<float> logits_;  // (n_layer, n_vocab)
    LinearScratch scratch_;
};

}  // namespace minigpt
