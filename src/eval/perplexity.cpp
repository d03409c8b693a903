#include "eval/perplexity.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

#include "runtime/transformer.h"
#include "tokenizer/tokenizer.h"

namespace minigpt {

Window llama_chunk(int64_t i, int64_t n_ctx) { return Window{i * n_ctx, (i + 1) * n_ctx, i * n_ctx + n_ctx / 2 + 1}; }

std::vector<Window> llama_chunks(int64_t n_tokens, int64_t n_ctx, int64_t max_chunks) {
    if (n_ctx < 2) throw std::runtime_error("perplexity needs a context of at least 2 tokens, got " + std::to_string(n_ctx));
    if (n_tokens < 2 * n_ctx)
        throw std::runtime_error("you need at least " + std::to_string(2 * n_ctx) +
                                 " tokens to evaluate perplexity with a context of " + std::to_string(n_ctx) +
                                 "; the text tokenizes to only " + std::to_string(n_tokens) +
                                 " (use a longer text or a smaller -c)");
    int64_t n_chunk = n_tokens / n_ctx;
    if (max_chunks >= 0) n_chunk = std::min(n_chunk, max_chunks);
    std::vector<Window> w;
    for (int64_t i = 0; i < n_chunk; ++i) w.push_back(llama_chunk(i, n_ctx));
    return w;
}

std::vector<Window> sliding_windows(int64_t n_tokens, int64_t n_ctx, int64_t stride, int64_t max_windows) {
    if (n_ctx < 2) throw std::runtime_error("perplexity needs a context of at least 2 tokens, got " + std::to_string(n_ctx));
    if (stride < 1 || stride > n_ctx)
        throw std::runtime_error("--stride must be between 1 and the context (" + std::to_string(n_ctx) + "), got " +
                                 std::to_string(stride));
    if (n_tokens < 2) throw std::runtime_error("the text tokenizes to " + std::to_string(n_tokens) + " tokens; need at least 2");
    std::vector<Window> w;
    int64_t prev_end = 0;
    for (int64_t begin = 0; begin < n_tokens; begin += stride) {
        if (max_windows >= 0 && int64_t(w.size()) >= max_windows) break;
        const int64_t end = std::min(begin + n_ctx, n_tokens);
        // Targets the previous windows did not score; position `begin` has no logits before it.
        const int64_t first_target = std::max(prev_end, begin + 1);
        if (first_target < end) w.push_back(Window{begin, end, first_target});
        prev_end = end;
        if (end == n_tokens) break;
    }
    return w;
}

double token_nll(const float* logits, int64_t n_vocab, int32_t target) {
    if (target < 0 || target >= n_vocab)
        throw std::runtime_error("target token " + std::to_string(target) + " is outside the vocabulary of " +
                                 std::to_string(n_vocab));
    float max = logits[0];
    for (int64_t i = 1; i < n_vocab; ++i) max = std::max(max, logits[i]);
    double sum = 0.0;
    for (int64_t i = 0; i < n_vocab; ++i) sum += std::exp(double(logits[i]) - double(max));
    return std::log(sum) + double(max) - double(logits[target]);
}

int32_t argmax(const float* logits, int64_t n_vocab) {
    int64_t best = 0;
    for (int64_t i = 1; i < n_vocab; ++i)
        if (logits[i] > logits[best]) best = i;
    return int32_t(best);
}

double NllStats::ppl() const { return std::exp(mean()); }

double NllStats::ppl_error() const {
    if (count < 2) return 0.0;
    const double m = mean();
    const double var = sum2 / double(count) - m * m;
    return var > 0 ? ppl() * std::sqrt(var / double(count - 1)) : 0.0;
}

std::vector<Window> bos_chunks(int64_t n_tokens, int64_t n_ctx, int64_t max_chunks) {
    if (n_ctx < 1) throw std::runtime_error("perplexity: context must be at least 1");
    if (n_tokens < 2) throw std::runtime_error("perplexity: the text has no tokens to score");
    std::vector<Window> out;
    for (int64_t start = 1; start < n_tokens; start += n_ctx) {  // tokens[0] is BOS
        if (max_chunks >= 0 && int64_t(out.size()) >= max_chunks) break;
        Window w;
        w.begin = start - 1;
        w.first_target = start;
        w.end = std::min(n_tokens, start + n_ctx);
        out.push_back(w);
    }
    return out;
}

PerplexityPlan plan_perplexity(const Tokenizer& tok, const std::string& text, int64_t n_vocab, int64_t n_ctx,
                               PerplexityProtocol protocol, int64_t stride, int64_t max_chunks) {
    PerplexityPlan p;
    p.opt.n_vocab = n_vocab;
    p.opt.bos_id = tok.bos_id();
    p.tokens = tok.encode(text);
    if (protocol == PerplexityProtocol::BosChunks) {
        if (tok.bos_id() < 0) throw std::runtime_error("--bos-chunks: the vocabulary has no BOS token");
        p.tokens.insert(p.tokens.begin(), tok.bos_id());
        p.windows = bos_chunks(int64_t(p.tokens.size()), n_ctx, max_chunks);
        p.opt.bos_first = true;
        return p;
    }
    if (tok.add_bos()) p.tokens.insert(p.tokens.begin(), tok.bos_id());
    if (protocol == PerplexityProtocol::Sliding) {
        p.windows = sliding_windows(int64_t(p.tokens.size()), n_ctx, stride, max_chunks);
    } else {
        p.windows = llama_chunks(int64_t(p.tokens.size()), n_ctx, max_chunks);
        p.opt.bos_first = tok.add_bos();
    }
    return p;
}

WindowEvaluator transformer_evaluator(Transformer& tf) {
    return [&tf](const int32_t* tokens, int64_t n, int64_t first_logit) {
        tf.reset();
        if (first_logit > 0) tf.forward(tokens, first_logit);
        return tf.forward(tokens + first_logit, n - first_logit, true);
    };
}

PerplexityResult compute_perplexity(const std::vector<int32_t>& tokens, const std::vector<Window>& windows,
                                    const PerplexityOptions& opt, const WindowEvaluator& eval,
                                    const WindowObserver& observer) {
    if (opt.n_vocab <= 0) throw std::runtime_error("perplexity: vocabulary size not set");
    if (opt.bos_first && opt.bos_id < 0)
        throw std::runtime_error("perplexity: the vocabulary asks for BOS but has no tokenizer.ggml.bos_token_id");
    PerplexityResult r;
    std::vector<int32_t> buf;
    for (size_t i = 0; i < windows.size(); ++i) {
        const Window& w = windows[i];
        if (w.begin < 0 || w.end > int64_t(tokens.size()) || w.first_target <= w.begin || w.first_target > w.end)
            throw std::runtime_error("perplexity: window " + std::to_string(i) + " is outside the text");
        buf.assign(tokens.begin() + w.begin, tokens.begin() + w.end);
        if (opt.bos_first) buf[0] = opt.bos_id;
        // The window's last token is only a target: its own logits are never
        // used, so it is not fed (a window of n_ctx + 1 tokens fits n_ctx).
        const float* logits = eval(buf.data(), w.n_tokens() - 1, w.first_logit());
        for (int64_t k = 0; k < w.n_scored(); ++k)
            r.stats.add(token_nll(logits + k * opt.n_vocab, opt.n_vocab, tokens[size_t(w.first_target + k)]));
        r.running_ppl.push_back(r.stats.ppl());
        if (observer) observer(i, w, logits, r);
    }
    return r;
}

}  // namespace minigpt
