// The attention-head flags, declared once so that every command spells and
// documents them the same way (values are checked as usage errors, exit 2):
//
//   add_ablation_options(opts);                          // --ablate, --ablate-mode, --mean-file
//   const AblationRequest req = ablation_options(args);   // --ablate-mode checked
//   check_ablation(req, model->config());                 // the heads checked against the model
//   auto hook = ablation_from_options(*model, req, own_windows, window, threads);   (analysis/ablation.h)
//
//   add_analysis_options(opts);                           // generate: the above and --attention, --trace, ...
//   const AnalysisOptions a = analysis_options(args);
//   AnalysisSession analysis(model, tokenizer, a, threads);   (analysis/analysis_session.h)
#pragma once
#include <string>


#include "analysis/ablation.h"
#include "analysis/analysis_session.h"
#include "cli/args.h"

namespace minigpt::cli {

inline void add_ablation_options(Options& opts, const std::string& mean_default = "the prompt") {
    opts.add_options("Attention heads")(
        "ablate", "heads to ablate: L.H,L.H,L.* (layer and head from 0; L.* = the whole layer)",
        text_value(), "HEADS")(
        "ablate-mode", "zero: the head's output (z) is zeroed before the output projection (Hugging Face "
                       "head_mask); mean: replaced by its mean over an unablated run on --mean-file (default: " +
                           mean_default + ")",
        text_value("zero"), "MODE")(
        "mean-file", "reference text for --ablate-mode mean (the model's tokenizer)", text_value(),
        "FILE");
}

inline AblationMode ablation_mode_option(const ParsedFlags& args) {
    return usage_errors("--ablate-mode", [&] { return parse_ablation_mode(args.value("ablate-mode")); });
}

inline AblationRequest ablation_options(const ParsedFlags& args) {
    AblationRequest a;
    if (has(args, "ablate")) a.heads = args.value("ablate");
    a.mode = ablation_mode_option(args);
    if (has(args, "mean-file")) a.mean_file = args.value("mean-file");
    return a;
}

// The request's heads checked against the model (a usage error naming --ablate or --mean-file).
inline std::vector<HeadRef> check_ablation(const AblationRequest& request, const Config& cfg) {
    return usage_errors("--ablate", [&] { return ablation_heads(request, cfg); });
}

// --attention FILE and --attention-type (generate, logits).
inline void add_attention_options(Options& opts, const std::string& help) {
    opts.add_options("Attention heads")("attention", help, text_value(), "FILE")(
        "attention-type", "f16 or f32 weights in the attention file", text_value("f16"),
        "TYPE");
}

inline AttentionDType attention_type_option(const ParsedFlags& args) {
    return usage_errors("--attention-type",
                        [&] { return parse_attention_dtype(args.value("attention-type")); });
}

inline void add_analysis_options(Options& opts, bool with_trace = true) {
    add_ablation_options(opts);
    if (!with_trace) return;
    add_attention_options(opts, "write every layer's and head's attention weights (prompt matrix, then one row per "
                                "generated token) to FILE (docs/attention-format.md; scripts/read_attention.py)");
    opts.add_options("Attention heads")(
        "trace", "write one JSON line per generated token to FILE: chosen id, text, log-probability, entropy, "
                 "top candidates before sampling filters", text_value(), "FILE")(
        "trace-top-k", "candidates per trace line", number_value("10"), "K")(
        "logit-lens", "add to each trace line every layer's top tokens (residual stream through the final "
                      "LayerNorm and the unembedding)")(
        "lens-top-k", "tokens per layer with --logit-lens", number_value("5"), "K")(
        "dla", "add to each trace line the heads whose direct write to the residual stream raised or lowered the "
               "chosen token's logit most (direct logit attribution, as heads dla; docs/heads.md)")(
        "dla-top-k", "heads per trace line with --dla", number_value("5"), "K");
}

inline AnalysisOptions analysis_options(const ParsedFlags& args, bool with_trace = true) {
    AnalysisOptions a;
    a.ablation = ablation_options(args);
    if (!with_trace) return a;
    if (has(args, "attention")) a.attention_path = args.value("attention");
    a.attention_type = attention_type_option(args);
    if (has(args, "trace")) a.trace_path = args.value("trace");
    a.trace.top_k = int(int_option(args, "trace-top-k", between(0, 1000000)));
    a.trace.logit_lens = has(args, "logit-lens");
    a.trace.lens_top_k = int(int_option(args, "lens-top-k", between(0, 1000000)));
    if (a.trace.logit_lens && a.trace_path.empty()) usage_error("--logit-lens needs --trace FILE");
    a.trace.dla = has(args, "dla");
    a.trace.dla_top_k = int(int_option(args, "dla-top-k", between(0, 1000000)));
    if (a.trace.dla && a.trace_path.empty()) usage_error("--dla needs --trace FILE");
    return a;
}

}  // namespace minigpt::cli
