// Generation traces: one JSON object per line (JSONL), written as decoding
// goes, so a trace can be read while it grows and an interrupted run leaves
// only complete lines (each line is written with one fwrite and flushed; the
// file is written in place, not all-or-nothing like other outputs, because a
// partial trace is still a useful record).
//
// Line 1, written by begin():
//   {"type":"prompt","model":NAME,"n_layer":L,"n_head":H,"n_vocab":V,
//    "top_k":K,"attention":PATH|null,"tokens":[{"pos":0,"id":ID,"text":TEXT},...]}
// Then one line per generated token, written by step():
//   {"type":"step","pos":P,"id":ID,"text":TEXT,"logprob":LP,"entropy":H,
//    "top":[{"id":ID,"text":TEXT,"p":P},...],
//    "lens":[{"layer":0,"top":[{"id":ID,"text":TEXT,"p":P},...]},...],   (with --logit-lens)
//    "dla":{"logit":X,"heads":[{"layer":L,"head":H,"value":V},...]}}   (with --dla)
// dla: direct logit attribution (analysis/dla.h) of the chosen token's logit X
// to every head; the dla_top_k heads of largest |V| are kept, largest first.
// pos is the position the chosen token takes in the sequence (the prompt holds
// 0..n_prompt-1). logprob, entropy (nats) and top are computed from the raw
// logits at temperature 1, before any sampling filter (penalties, top-k/p,
// min-p, temperature); top is sorted by probability (ties: lower id first).
// TEXT is the token's bytes as a JSON string; bytes that are not valid UTF-8
// on their own (a token ending inside a character) become U+FFFD (the rule of
// util/json.h) and the token gets a "hex" member with its exact bytes. Numbers
// carry 7 significant digits; a non-finite one (log p of a -inf logit) is null.
// Lines are written with util/json.h (nlohmann-json).
#pragma once
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "runtime/hooks.h"
#include "analysis/dla.h"
#include "analysis/logit_lens.h"
#include "runtime/multi_hooks.h"
#include "runtime/model.h"
#include "tokenizer/tokenizer.h"
#include "util/json.h"

namespace minigpt {

struct TraceOptions {
    int top_k = 10;           // candidates per step
    bool logit_lens = false;  // per-layer predictions (costs n_layer extra unembeddings per step)
    int lens_top_k = 5;       // tokens per layer in the lens
    bool dla = false;         // direct logit attribution of each chosen token (costs one d x d pass over W_O per layer)
    int dla_top_k = 5;        // heads per step with dla
};

struct TokenProb {
    int32_t id;
    double p;
};

// What a trace line says about one next-token distribution.
struct DistributionSummary {
    double logprob = 0;           // log p(chosen); -inf if its logit is -inf
    double entropy = 0;           // -sum p log p, nats
    std::vector<TokenProb> top;   // the top_k most probable, descending (ties: lower id first)
};

// softmax(logits[0..n)) in double, max subtracted. chosen < 0: logprob left 0.
// `order` is scratch space (reused across calls to avoid allocating).
DistributionSummary summarize_distribution(const float* logits, int64_t n, int32_t chosen, int top_k,
                                           std::vector<int32_t>& order);

class TraceWriter {
public:
    // Opens (truncates) path now; throws naming it.
    TraceWriter(const std::string& path, const Model& model, const Tokenizer& tokenizer, const TraceOptions& opt = {});
    ~TraceWriter();
    TraceWriter(const TraceWriter&) = delete;
    TraceWriter& operator=(const TraceWriter&) = delete;

    // The logit-lens and DLA hooks when enabled, else nullptr. Add it to the
    // hooks attached to the Transformer (MultiHooks) before decoding.
    ForwardHooks* hooks() { return hooks_.empty() ? nullptr : &hooks_; }

    // The first line: the prompt's tokens; attention_path names the attention
    // export of the same run ("" for none) so a viewer can find it.
    void begin(const std::vector<int32_t>& prompt, const std::string& attention_path = "");
    // One line for the token chosen at position pos from `logits` (the raw
    // n_vocab logits the sampler saw). With the logit lens or DLA, the
    // Transformer's last forward call must have ended at position pos - 1, and
    // (DLA) the token fed there was the previous step's chosen one (or the
    // prompt's last).
    void step(int64_t pos, const float* logits, int32_t chosen_id);
    void close();  // flushes and closes; throws on a write error

private:
    void add_token(Json& obj, int32_t id) const;  // "id", "text" and, for invalid UTF-8, "hex"
    Json top_list(const std::vector<TokenProb>& top) const;
    Json dla_json(int64_t pos, const float* logits, int32_t chosen_id) const;  // the "dla" member
    void write_line(const Json& obj);

    std::string path_;
    FILE* f_ = nullptr;
    const Model& model_;
    const Tokenizer& tok_;
    TraceOptions opt_;
    std::unique_ptr<LogitLens> lens_;
    std::unique_ptr<DlaCapture> dla_;
    MultiHooks hooks_;              // lens_ and dla_
    int32_t last_token_ = -1;       // the token at position pos - 1 of the next step
    std::vector<int32_t> order_;
};

}  // namespace minigpt
