// Perplexity by the two protocols people compare against.
//
// llama-perplexity's (the default; llama.cpp tools/perplexity/perplexity.cpp):
//   the whole text is tokenized once (BOS first when the vocabulary asks for
//   it); n_chunk = floor(n_tokens / n_ctx) chunks of n_ctx tokens, each
//   evaluated from an empty cache with its first token replaced by BOS when
//   the vocabulary adds BOS; only the second half is scored: with
//   first = n_ctx / 2, the logits at positions first .. n_ctx-2 predict the
//   tokens at first+1 .. n_ctx-1, so n_ctx - 1 - first tokens per chunk.
//   llama-perplexity refuses texts shorter than 2 * n_ctx tokens; so do we.
// Hugging Face's sliding window ("Perplexity of fixed-length models" in the
//   transformers docs): windows of n_ctx tokens starting every `stride`
//   tokens; each window scores only the tokens the previous window did not
//   (the first window all but its first token), so every token after the
//   first is scored exactly once with up to n_ctx - stride tokens of context.
//   No BOS is substituted (the model sees the text as it is).
// Both: PPL = exp(mean NLL), NLL = -log softmax(logits)[target] computed in
// double with log-sum-exp; the ± error is llama.cpp's: with m = mean NLL and
// v = mean NLL² - m², error = PPL * sqrt(v / (count - 1)).
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace minigpt {

// One evaluation from an empty cache: tokens [begin, end - 1) at positions
// 0..end-begin-2 (the last token is only a target, so it is not fed). The
// targets scored are the tokens at first_target .. end-1, each predicted by
// the logits of the position before it.
struct Window {
    int64_t begin = 0, end = 0, first_target = 0;
    int64_t n_tokens() const { return end - begin; }
    int64_t n_scored() const { return end - first_target; }
    // Index (within the window) of the first position whose logits are needed.
    int64_t first_logit() const { return first_target - 1 - begin; }
};

// Chunk i of n_ctx tokens scored as llama-perplexity scores it (second half).
Window llama_chunk(int64_t i, int64_t n_ctx);
// llama-perplexity's chunks; max_chunks < 0 means all. Throws when the text
// has fewer than 2 * n_ctx tokens (as llama-perplexity does) or n_ctx < 2.
std::vector<Window> llama_chunks(int64_t n_tokens, int64_t n_ctx, int64_t max_chunks = -1);
// scripts/train.py's validation protocol, over tokens = [BOS] + text ids: the
// text cut into consecutive chunks of n_ctx tokens (the last may be shorter),
// each evaluated from an empty cache as BOS followed by its first tokens, and
// every text token scored exactly once (the first predicted from BOS alone).
// Window i starts at the token before its chunk, which the caller replaces by
// BOS (PerplexityOptions::bos_first).
std::vector<Window> bos_chunks(int64_t n_tokens, int64_t n_ctx, int64_t max_chunks = -1);
// Hugging Face's sliding windows; 1 <= stride <= n_ctx, n_tokens >= 2.
std::vector<Window> sliding_windows(int64_t n_tokens, int64_t n_ctx, int64_t stride, int64_t max_windows = -1);

// -log softmax(logits)[target] in double: log(sum_i exp(l_i - max)) + max - l_target.
double token_nll(const float* logits, int64_t n_vocab, int32_t target);
// Index of the largest logit (the first one on ties).
int32_t argmax(const float* logits, int64_t n_vocab);

// Running sums of NLL and NLL², and the statistics llama-perplexity prints.
struct NllStats {
    double sum = 0, sum2 = 0;
    int64_t count = 0;
    void add(double nll) { sum += nll; sum2 += nll * nll; ++count; }
    double mean() const { return count ? sum / double(count) : 0.0; }
    double ppl() const;
    // llama.cpp's uncertainty of the PPL (0 when it cannot be computed).
    double ppl_error() const;
};

// Evaluates tokens[0..n) from an empty cache and returns the logits of
// positions first_logit..n-1, row-major (n - first_logit, n_vocab).
using WindowEvaluator = std::function<const float*(const int32_t* tokens, int64_t n, int64_t first_logit)>;


struct PerplexityOptions {
    int64_t n_vocab = 0;
    bool bos_first = false;   // replace each window's first token by bos_id (llama protocol with add_bos)
    int32_t bos_id = -1;
};

struct PerplexityResult {
    NllStats stats;
    std::vector<double> running_ppl;  // after each window, as llama-perplexity's [i] values
    double ppl() const { return stats.ppl(); }
    double ppl_error() const { return stats.ppl_error(); }
};

class Tokenizer;
enum class PerplexityProtocol { Llama, Sliding, BosChunks };
// What the perplexity command scores a text with, by protocol (above): the
// text's tokens (BOS first where the protocol or the vocabulary asks for it),
// the windows and the options. Llama: llama_chunks, BOS substituted when the
// vocabulary adds BOS; Sliding: sliding_windows with `stride`, no BOS
// substituted; BosChunks: bos_chunks (throws when the vocabulary has no BOS).
// Commands that score a text "as perplexity does" (heads grad) call this too.
struct PerplexityPlan {
    std::vector<int32_t> tokens;
    std::vector<Window> windows;
    PerplexityOptions opt;
};
PerplexityPlan plan_perplexity(const Tokenizer& tok, const std::string& text, int64_t n_vocab, int64_t n_ctx,
                               PerplexityProtocol protocol, int64_t stride = 0, int64_t max_chunks = -1);

class Transformer;
// Evaluates windows with a Transformer (context >= the window): reset, run the
// positions before first_logit without logits (the LM head is the costliest
// matrix), then the rest with all logits.
WindowEvaluator transformer_evaluator(Transformer& tf);

struct PerplexityResult;
// Called after each window with the logits of its scored targets (row k, k <
// w.n_scored(), predicts tokens[w.first_target + k]) and the result so far.
using WindowObserver =
    std::function<void(size_t index, const Window& w, const float* target_logits, const PerplexityResult& so_far)>;

// Scores every window; `observer` (may be empty) sees each window's logits
// after its NLLs are added.
PerplexityResult compute_perplexity(const std::vector<int32_t>& tokens, const std::vector<Window>& windows,
                                    const PerplexityOptions& opt, const WindowEvaluator& eval,
                                    const WindowObserver& observer = {});

}  // namespace minigpt
