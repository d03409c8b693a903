#include "analysis/head_importance.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>

#include "eval/perplexity.h"

namespace minigpt {

double NllSum::perplexity() const { return std::exp(mean()); }

NllSum windows_nll(Transformer& tf, const std::vector<std::vector<int32_t>>& windows, int64_t chunk) {
    const int64_t V = tf.config().n_vocab;
    NllSum s;
    for (const auto& w : windows) {
        const int64_t n = int64_t(w.size());
        tf.reset();
        for (int64_t start = 0; start < n; start += chunk) {
            const int64_t c = std::min(chunk, n - start);
            const float* logits = tf.forward(w.data() + start, c, /*all_logits=*/true);
            for (int64_t r = 0; r < c; ++r) {
                const int64_t target_pos = start + r + 1;  // row r predicts the next token
                if (target_pos >= n) break;
                s.nll += token_nll(logits + r * V, V, w[size_t(target_pos)]);  // the perplexity command's NLL
                ++s.count;
            }
        }
    }
    return s;
}

ImportanceReport run_head_importance(const Model& model, const std::vector<std::vector<int32_t>>& windows,
                                     const ImportanceOptions& opt, const std::function<void(int64_t, int64_t)>& progress) {
    const Config& c = model.config();
    const int64_t K = c.n_layer * c.n_head;
    size_t longest = 2;
    for (const auto& w : windows) longest = std::max(longest, w.size());
    if (windows.empty()) throw std::runtime_error("head importance: the text gives no window of 2 or more tokens");
    TransformerOptions to;
    to.n_ctx = int64_t(longest);
    to.n_threads = opt.n_threads;
    Transformer tf(model, to);
    HeadAblation ablation(c, opt.mode, opt.means);
    tf.set_hooks(&ablation);

    const int64_t total = 1 + K + (opt.curve ? K : 0);
    int64_t done = 0;
    auto evaluate = [&](const std::vector<HeadRef>& heads) {
        ablation.set_heads(heads);
        const NllSum s = windows_nll(tf, windows);
        if (progress) progress(++done, total);
        return s;
    };

    ImportanceReport rep;
    rep.n_layer = c.n_layer;
    rep.n_head = c.n_head;
    const NllSum base = evaluate({});
    rep.baseline_ppl = base.perplexity();
    rep.tokens_scored = base.count;
    for (int64_t k = 0; k < K; ++k)
        rep.ablated_ppl.push_back(evaluate({HeadRef{int(k / c.n_head), int(k % c.n_head)}}).perplexity());

    std::vector<int64_t> order(static_cast<size_t>(K));
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(),
                     [&](int64_t a, int64_t b) { return rep.ablated_ppl[size_t(a)] < rep.ablated_ppl[size_t(b)]; });
    for (int64_t k : order) rep.prune_order.push_back(HeadRef{int(k / c.n_head), int(k % c.n_head)});
    if (opt.curve) {
        std::vector<HeadRef> removed;
        for (const HeadRef& h : rep.prune_order) {
            removed.push_back(h);
            rep.curve_ppl.push_back(evaluate(removed).perplexity());
        }
    }
    return rep;
}

WindowAblation ablate_each_head(const Model& model, const std::vector<int32_t>& tokens,
                                const std::vector<Window>& windows, const PerplexityOptions& opt, int n_threads,
                                const std::function<void(int64_t, int64_t)>& progress) {
    const Config& c = model.config();
    const int64_t K = c.n_layer * c.n_head;
    int64_t longest = 1;
    for (const Window& w : windows) longest = std::max(longest, w.n_tokens() - 1);
    TransformerOptions to;
    to.n_ctx = longest;
    to.n_threads = n_threads;
    Transformer tf(model, to);
    HeadAblation ablation(c, AblationMode::Zero);
    tf.set_hooks(&ablation);
    const WindowEvaluator eval = transformer_evaluator(tf);
    WindowAblation r;
    const PerplexityResult base = compute_perplexity(tokens, windows, opt, eval);
    r.baseline_ppl = base.ppl();
    r.tokens_scored = base.stats.count;
    if (progress) progress(1, 1 + K);
    for (int64_t k = 0; k < K; ++k) {
        ablation.set_heads({HeadRef{int(k / c.n_head), int(k % c.n_head)}});
        r.ablated_ppl.push_back(compute_perplexity(tokens, windows, opt, eval).ppl());
        if (progress) progress(2 + k, 1 + K);
    }
    return r;
}

}  // namespace minigpt
