// Everything `generate` (or any decoding loop) needs for --ablate,
// --attention and --trace, behind four calls:
//
//   AnalysisSession analysis(model, tokenizer, options, n_threads);
//   analysis.begin(transformer, prompt_ids);        // before the prompt's forward call
//   ... logits = transformer.forward(...);
//       id = sampler.sample(logits, ...);
//       analysis.step(transformer.pos(), logits, id);  // before feeding id back
//   analysis.finish(all_ids);                        // after the last forward call
//
// With no option set, begin() attaches nothing to the Transformer, so the
// plain decoding path is untouched (not even the hook bitmask is set).
// While an attention export is on, the KV cache must not be reset or
// truncated (no context shifting): the file holds one growing sequence.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "analysis/ablation.h"
#include "analysis/attention_export.h"
#include "runtime/multi_hooks.h"
#include "analysis/trace.h"
#include "runtime/transformer.h"

namespace minigpt {

struct AnalysisOptions {
    AblationRequest ablation;                    // --ablate, --ablate-mode, --mean-file ("" = the prompt)
    std::string attention_path;                  // attention export ("" = none)
    AttentionDType attention_type = AttentionDType::F16;
    std::string trace_path;                      // JSONL trace ("" = none)
    TraceOptions trace;                          // top-k, logit lens

    bool any() const { return !ablation.heads.empty() || !attention_path.empty() || !trace_path.empty(); }
};

class AnalysisSession {
public:
    // Checks the options (head list, paths are opened in begin()); throws naming the option.
    AnalysisSession(const Model& model, const Tokenizer& tokenizer, const AnalysisOptions& options, int n_threads = 1);

    // Computes mean-ablation references, opens the outputs, attaches the hooks
    // to tf and writes the trace's prompt line. tf must be at position 0.
    void begin(Transformer& tf, const std::vector<int32_t>& prompt);
    // One trace line for the token chosen at position pos (no-op without --trace).
    void step(int64_t pos, const float* logits, int32_t chosen_id);
    // Writes the attention file (ids: every token so far; those never run are
    // dropped), closes the trace and detaches the hooks.
    void finish(const std::vector<int32_t>& ids);

    const std::vector<HeadRef>& ablated_heads() const { return heads_; }

private:
    const Model& model_;
    const Tokenizer& tok_;
    AnalysisOptions opt_;
    int n_threads_;
    std::vector<HeadRef> heads_;
    Transformer* tf_ = nullptr;
    MultiHooks hooks_;
    std::unique_ptr<HeadAblation> ablation_;
    std::unique_ptr<AttentionWriter> attention_;
    std::unique_ptr<TraceWriter> trace_;
};

}  // namespace minigpt
