// Options of `minigpt generate`: parsed and checked before any file is loaded.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "analysis/analysis_session.h"
#include "eval/sampler.h"

namespace minigpt::cli {

struct GenerateOptions {
    std::string model_path;
    bool have_text = false;        // prompt given as text (-p or -f)...
    std::string prompt_text;
    std::vector<int32_t> prompt_ids;  // ...or as ids (--ids), used verbatim
    bool allow_special = false;    // --special: special-token text in the prompt becomes the special token
    int64_t n_predict = -1;        // -1: until end-of-text or the context is full
    int64_t n_ctx = 0;             // 0: the model's context length
    int64_t n_batch = 512;
    int n_threads = 1;
    SamplerParams sampling;
    bool seed_given = false;
    std::vector<std::string> stops;
    bool ignore_eos = false;
    bool display_prompt = true;
    bool stats = false;
    bool json = false;
    bool profile = false;          // --profile: time per part of the forward pass (stderr)
    AnalysisOptions analysis;      // --ablate, --attention, --trace, --logit-lens
};

// Parses argv (argv[0] is "minigpt generate"). Returns false when --help was
// printed. Throws UsageError (usage errors, naming the
// option) or std::runtime_error (unreadable prompt file, missing model file).
bool parse_generate_options(int argc, char** argv, GenerateOptions& out);

}  // namespace minigpt::cli
