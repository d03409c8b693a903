#include "cli/generate_args.h"

#include <cstdio>


#include "cli/args.h"
#include "cli/heads_flags.h"
#include "eval/rng.h"

namespace minigpt::cli {

namespace {

const char* kDescription =
    "Generate text from a prompt, streamed to stdout as it is decoded (UTF-8-safe).\n"
    "Flags follow llama.cpp's llama-cli. The prompt is printed first (as its tokens\n"
    "decode), then the continuation; --no-display-prompt prints only the continuation.\n"
    "Generation stops at end-of-text, after -n tokens, at a --stop string (not printed),\n"
    "or when the context is full (said on stderr). A newline ends the output only when\n"
    "stdout is a terminal, so piped output is exactly the text.\n"
    "Sampling, in llama.cpp's order: repetition penalty (last --repeat-last-n ids, prompt\n"
    "included: logit > 0 ? logit/penalty : logit*penalty), --top-k, --top-p, --min-p,\n"
    "--temp (0 = greedy argmax), then a draw with our own seeded RNG (xoshiro256**):\n"
    "the same --seed gives the same text on every machine, build and thread count.";

void add_generate_options(Options& opts) {
    add_model_option(opts, "GGUF model file (required)", "input");
    add_prompt_option(opts, "prompt text", "input");
    add_file_option(opts, "read the prompt from FILE (- = stdin); one trailing newline is dropped, as llama.cpp does",
                    "input");
    add_ids_option(opts, "prompt as token ids, e.g. \"464 2068 7586\" (used verbatim: no BOS added)", "input");
    add_ctx_option(opts, "context size in tokens; 0 = the model's context length", "0", "generation");
    add_batch_option(opts, "generation");
    add_threads_option(opts, "generation");
    // clang-format off
    opts.add_options("input")
        ("special", "special-token text in the prompt (e.g. <|endoftext|>) becomes the special token");
    opts.add_options("generation")
        ("n,n-predict", "tokens to generate; -1 = until end-of-text or the context is full", number_value("-1"), "N")
        ("stop", "stop when the text contains STRING (not printed); repeatable", text_value(), "STRING")
        ("ignore-eos", "never stop at end-of-text (its probability is set to 0)");
    opts.add_options("sampling")
        ("s,seed", "RNG seed; -1 = from the clock (printed with --stats)", number_value("-1"), "N")
        ("temp", "temperature; 0 = greedy", number_value("0.8"), "T")
        ("top-k", "keep the K most likely tokens; 0 = off", number_value("40"), "K")
        ("top-p", "keep the smallest set with cumulative probability >= P, in (0,1]; 1 = off",
         number_value("0.95"), "P")
        ("min-p", "keep tokens with p >= P * p_max, in [0,1]; 0 = off", number_value("0.05"), "P")
        ("repeat-penalty", "penalty for recently seen tokens; 1 = off", number_value("1.0"), "X")
        ("repeat-last-n", "how many recent ids are penalized; 0 = off, -1 = all", number_value("64"), "N");
    opts.add_options("output")
        ("no-display-prompt", "print only the generated text, not the prompt")
        ("stats", "print the seed, prompt tokens, prefill and decode tokens/s, time to first token (stderr)")
        ("json", "instead of text, one JSON object per sampled token and line: {\"id\", \"text\" (decoded text "
                 "completed by this token; all concatenated = the output), \"piece\" (the token's own bytes, invalid "
                 "UTF-8 as U+FFFD), \"probability\" (in the distribution it was drawn from; 1 when greedy), "
                 "\"model_probability\" (softmax of the raw logits)}. The end-of-text token is reported too; stop "
                 "strings end the run but their tokens are reported")
        ("profile", "print the time spent in each part of the forward pass (embedding, LayerNorm, QKV, "
                    "attention, output projection, MLP, LM head, sampling) on stderr");
    // clang-format on
    add_analysis_options(opts);
}

// The numbers and switches: every value is checked before any file is touched.
void read_values(const ParsedFlags& r, GenerateOptions& o) {
    o.n_predict = int_option(r, "n-predict", [](int64_t v) { return v >= -1; },
                             "must be -1 (until the context is full) or a count >= 0");
    o.n_ctx = int_option(r, "ctx-size", [](int64_t v) { return v >= 0; }, "must be >= 0 (0 = the model's)");
    o.n_batch = int_option(r, "batch-size", at_least(1));
    o.n_threads = threads_option(r);
    const int64_t seed = int_option(r, "seed", [](int64_t v) { return v >= -1; },
                                    "must be -1 (from the clock) or a number >= 0");
    SamplerParams& sp = o.sampling;
    sp.temp = float_option(r, "temp", [](double v) { return v >= 0; }, "must be >= 0 (0 = greedy)");
    sp.top_k = int32_t(int_option(r, "top-k", [](int64_t v) { return v >= 0 && v <= INT32_MAX; },
                                  "must be >= 0 (0 = off)"));
    sp.top_p = float_option(r, "top-p", [](double v) { return v > 0 && v <= 1; }, "must lie in (0, 1]");
    sp.min_p = float_option(r, "min-p", [](double v) { return v >= 0 && v <= 1; }, "must lie in [0, 1]");
    sp.repeat_penalty = float_option(r, "repeat-penalty", [](double v) { return v > 0; }, "must be > 0 (1 = off)");
    sp.repeat_last_n = int32_t(int_option(r, "repeat-last-n", [](int64_t v) { return v >= -1 && v <= INT32_MAX; },
                                          "must be -1 (all), 0 (off) or a count"));
    o.seed_given = seed >= 0;
    sp.seed = o.seed_given ? uint64_t(seed) : seed_from_time();
    o.stops = r.all("stop");  // not split at commas: stop strings may contain them
    for (const std::string& s : o.stops)
        if (s.empty()) usage_error("--stop: the stop string is empty");
    o.ignore_eos = r.count("ignore-eos") > 0;
    o.display_prompt = r.count("no-display-prompt") == 0;
    o.stats = r.count("stats") > 0;
    o.json = r.count("json") > 0;
    o.profile = r.count("profile") > 0;
    o.analysis = analysis_options(r);
    o.allow_special = r.count("special") > 0;
}

// The prompt: exactly one source. The model file must exist before the prompt
// file is read (stdin is read once).
void read_prompt(const ParsedFlags& r, GenerateOptions& o) {
    const int sources = int(r.count("prompt") > 0) + int(r.count("file") > 0) + int(r.count("ids") > 0);
    if (sources == 0) usage_error("no prompt: give -p/--prompt TEXT, -f/--file FILE (- = stdin) or --ids IDS");
    if (sources > 1) usage_error("give only one of -p/--prompt, -f/--file and --ids");
    if (r.count("ids")) {
        o.prompt_ids = parse_ids(r.value("ids"), "ids");
    } else if (r.count("prompt")) {
        o.have_text = true;
        o.prompt_text = r.value("prompt");
    }
    if (!r.count("model")) usage_error("-m/--model is required: the GGUF model file to run");
    o.model_path = r.value("model");
    require_file(o.model_path, "-m/--model");
    if (r.count("file")) {
        o.have_text = true;
        o.prompt_text = read_input(r.value("file"), "-f/--file");
        if (!o.prompt_text.empty() && o.prompt_text.back() == '\n') o.prompt_text.pop_back();
    }
}

}  // namespace

bool parse_generate_options(int argc, char** argv, GenerateOptions& o) {
    Options opts = command_options(argv[0], kDescription);
    add_generate_options(opts);
    ParsedFlags r;
    if (!parse_flags(opts, argc, argv, r, {"", "input", "generation", "sampling", "output", "Attention heads"}))
        return false;
    read_values(r, o);
    read_prompt(r, o);
    return true;
}

}  // namespace minigpt::cli
