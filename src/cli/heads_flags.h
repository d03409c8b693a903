// The attention-head flags of decoding commands (generate, and perplexity for
// --ablate), declared once so that every command spells and documents them
// the same way:
//
//   add_analysis_options(opts);                 // with the command's other options
//   const AnalysisOptions a = analysis_options(args);
//   AnalysisSession analysis(model, tokenizer, a, threads);   (analysis_session.h)
#pragma once
#include <string>

#include <cxxopts.hpp>

#include "analysis/analysis_session.h"

namespace minigpt::cli {

inline void add_analysis_options(cxxopts::Options& opts, bool with_trace = true) {
    opts.add_options("Attention heads")(
        "ablate", "heads to ablate: L.H,L.H,L.* (layer and head from 0; L.* = the whole layer)",
        cxxopts::value<std::string>())(
        "ablate-mode", "zero: the head's output (z) is zeroed before the output projection (Hugging Face "
                       "head_mask); mean: replaced by its mean over an unablated run on --mean-file (default: the prompt)",
        cxxopts::value<std::string>()->default_value("zero"))(
        "mean-file", "reference text for --ablate-mode mean", cxxopts::value<std::string>());
    if (!with_trace) return;
    opts.add_options("Attention heads")(
        "attention", "write every layer's and head's attention weights (prompt matrix, then one row per "
                     "generated token) to FILE (docs/attention-format.md; scripts/read_attention.py)",
        cxxopts::value<std::string>())(
        "attention-type", "f16 or f32 weights in the attention file", cxxopts::value<std::string>()->default_value("f16"))(
        "trace", "write one JSON line per generated token to FILE: chosen id, text, log-probability, entropy, "
                 "top candidates before sampling filters", cxxopts::value<std::string>())(
        "trace-top-k", "candidates per trace line", cxxopts::value<int>()->default_value("10"))(
        "logit-lens", "add to each trace line every layer's top tokens (residual stream through the final "
                      "LayerNorm and the unembedding)")(
        "lens-top-k", "tokens per layer with --logit-lens", cxxopts::value<int>()->default_value("5"))(
        "dla", "add to each trace line the heads whose direct write to the residual stream raised or lowered the "
               "chosen token's logit most (direct logit attribution, as heads dla; docs/heads.md)")(
        "dla-top-k", "heads per trace line with --dla", cxxopts::value<int>()->default_value("5"));
}

inline AnalysisOptions analysis_options(const cxxopts::ParseResult& args, bool with_trace = true) {
    AnalysisOptions a;
    if (args.count("ablate")) a.ablate = args["ablate"].as<std::string>();
    a.ablate_mode = parse_ablation_mode(args["ablate-mode"].as<std::string>());
    if (args.count("mean-file")) a.mean_file = args["mean-file"].as<std::string>();
    if (!with_trace) return a;
    if (args.count("attention")) a.attention_path = args["attention"].as<std::string>();
    a.attention_type = parse_attention_dtype(args["attention-type"].as<std::string>());
    if (args.count("trace")) a.trace_path = args["trace"].as<std::string>();
    a.trace.top_k = args["trace-top-k"].as<int>();
    a.trace.logit_lens = args.count("logit-lens") > 0;
    a.trace.lens_top_k = args["lens-top-k"].as<int>();
    if (a.trace.top_k < 0 || a.trace.lens_top_k < 0) throw std::runtime_error("--trace-top-k and --lens-top-k must not be negative");
    if (a.trace.logit_lens && a.trace_path.empty()) throw std::runtime_error("--logit-lens needs --trace FILE");
    a.trace.dla = args.count("dla") > 0;
    a.trace.dla_top_k = args["dla-top-k"].as<int>();
    if (a.trace.dla_top_k < 0) throw cxxopts::exceptions::parsing("--dla-top-k must not be negative");
    if (a.trace.dla && a.trace_path.empty()) throw cxxopts::exceptions::parsing("--dla needs --trace FILE");
    return a;
}

}  // namespace minigpt::cli
