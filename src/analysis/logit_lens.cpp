#include "analysis/logit_lens.h"

#include <algorithm>

#include "kernels/ops.h"

namespace minigpt {

LogitLens::LogitLens(const Model& model)
    : model_(model),
      n_layer_(model.config().n_layer),
      d_(model.config().n_embd),
      n_vocab_(model.config().n_vocab),
      resid_(size_t(n_layer_ * d_), 0.f),
      normed_(size_t(n_layer_ * d_), 0.f),
      logits_(size_t(n_layer_ * n_vocab_), 0.f) {
    scratch_.reserve(d_);
}

void LogitLens::on(const HookView& v) {
    if (v.hook != Hook::ResidPost) return;
    const float* last = v.row(v.rows - 1);
    std::copy(last, last + d_, resid_.begin() + v.layer * d_);
    pos_ = v.pos0 + v.rows - 1;
}

const std::vector<float>& LogitLens::compute() {
    const Weights& w = model_.weights();
    layer_norm(normed_.data(), resid_.data(), n_layer_, d_, w.output_norm_w, w.output_norm_b, model_.config().ln_eps);
    linear(logits_.data(), normed_.data(), n_layer_, w.output, nullptr, scratch_, nullptr);
    return logits_;
}

}  // namespace minigpt
