// Head importance by ablation, and the pruning curve.
//
// Perplexity here is exp of the mean negative log-likelihood of every token of
// every window but the first, each predicted from its prefix within its window
// (windows from split_windows, each run from an empty cache):
//
//   PPL = exp( sum_w sum_{i=1}^{|w|-1} -ln p(w_i | w_0..w_{i-1}) / sum_w (|w| - 1) )
//
// (llama-perplexity scores only the second half of each window; scoring every
// position gives a smoother number for comparing ablations and costs nothing
// more.) Importance of a head = PPL with that head alone ablated - baseline
// PPL. The pruning curve removes heads cumulatively in increasing order of
// importance (least important first) and records PPL after each removal.
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

#include "analysis/ablation.h"
#include "eval/perplexity.h"
#include "runtime/model.h"
#include "runtime/transformer.h"

namespace minigpt {

struct NllSum {
    double nll = 0;     // sum of -ln p over the scored tokens
    int64_t count = 0;  // tokens scored
    double mean() const { return count ? nll / double(count) : 0.0; }
    double perplexity() const;
};

// Runs each window through tf (reset first; whatever hooks are attached stay
// attached) and sums the NLL of tokens 1.. of each window. Logits are taken in
// chunks of at most `chunk` positions, so memory stays at chunk * n_vocab floats.
NllSum windows_nll(Transformer& tf, const std::vector<std::vector<int32_t>>& windows, int64_t chunk = 128);

struct ImportanceOptions {
    AblationMode mode = AblationMode::Zero;
    std::vector<float> means;  // (n_layer, n_embd) for Mean mode
    bool curve = true;         // also compute the pruning curve
    int n_threads = 1;
};

struct ImportanceReport {
    int64_t n_layer = 0, n_head = 0;
    int64_t tokens_scored = 0;
    double baseline_ppl = 0;
    std::vector<double> ablated_ppl;   // index layer * n_head + head: that head alone ablated
    std::vector<HeadRef> prune_order;  // increasing importance (ties: lower layer, then head, first)
    std::vector<double> curve_ppl;     // curve_ppl[k]: the first k+1 heads of prune_order ablated
};

// progress(done, total) is called after each evaluation (each is a full pass over the windows).
ImportanceReport run_head_importance(const Model& model, const std::vector<std::vector<int32_t>>& windows,
                                     const ImportanceOptions& opt,
                                     const std::function<void(int64_t, int64_t)>& progress = nullptr);

// The same per-head ablation on windows chosen by the perplexity command's
// protocols (eval/perplexity.h: only each window's targets first_target..end-1
// count): the perplexity compute_perplexity gives, plain and with each head
// alone zero-ablated. heads grad --compare ranks its gradients against this.
struct WindowAblation {
    double baseline_ppl = 0;
    std::vector<double> ablated_ppl;  // index layer * n_head + head
    int64_t tokens_scored = 0;
};
WindowAblation ablate_each_head(const Model& model, const std::vector<int32_t>& tokens,
                                const std::vector<Window>& windows, const PerplexityOptions& opt, int n_threads,
                                const std::function<void(int64_t, int64_t)>& progress = nullptr);

}  // namespace minigpt
