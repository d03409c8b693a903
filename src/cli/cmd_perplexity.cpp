// minigpt perplexity: llama-perplexity's measurement, number for number.
// Protocols and statistics: src/eval/perplexity.h; the log-prob file and the KL
// report: src/eval/kl_divergence.h.
#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <memory>

#include "analysis/ablation.h"
#include "cli/args.h"
#include "cli/commands.h"
#include "cli/heads_flags.h"
#include "eval/kl_divergence.h"
#include "eval/perplexity.h"
#include "runtime/model.h"
#include "runtime/transformer.h"
#include "tokenizer/tokenizer.h"
#include "util/json.h"
#include "util/progress.h"
#include "util/read_file.h"

namespace minigpt::cli {

namespace {

constexpr int64_t kDefaultCtx = 512;  // llama-perplexity's default -c

Json num(double v) { return json_rounded(v, 10); }

Json mean_err(const MeanErr& m) { return {{"mean", num(m.mean)}, {"error", num(m.err)}}; }

Json kl_json(const KLReport& r) {
    Json o = Json::object();
    o["count"] = r.count;
    o["ppl"] = mean_err(r.ppl);
    o["ppl_base"] = mean_err(r.ppl_base);
    o["ln_ppl_ratio"] = mean_err(r.log_ppl_ratio);
    o["ppl_ratio"] = mean_err(r.ppl_ratio);
    o["ppl_diff"] = mean_err(r.ppl_diff);
    o["kld"] = mean_err(r.kld);
    o["kld_max"] = num(r.kld_max);
    o["kld_median"] = num(r.kld_median);
    o["kld_99"] = num(r.kld_99);
    o["p_diff"] = mean_err(r.p_diff);
    o["rms_p_diff"] = mean_err(r.rms_p_diff);
    o["same_top"] = mean_err(r.same_top);
    return o;
}

const char* kDescription =
    "Perplexity of a text, by default exactly as llama-perplexity measures it: the whole file tokenized "
    "(BOS first when the vocabulary adds BOS), cut into floor(n_tokens / c) chunks of c tokens, each evaluated "
    "from an empty cache with its first token replaced by BOS when the vocabulary adds BOS, scoring only the "
    "second half of each chunk; PPL = exp(mean NLL), ± as llama.cpp computes it. Prints [i]running-PPL values "
    "and \"Final estimate: PPL = x +/- y\".\n"
    "--stride S: Hugging Face's sliding window instead (windows of c tokens every S tokens, each scoring only "
    "the tokens not scored before).\n"
    "--save-logits FILE / --kl-base FILE: llama-perplexity's --kl-divergence-base file format (either tool "
    "reads the other's); --kl-base runs this model on the file's tokens and prints mean KL divergence, top-1 "
    "agreement and the PPL ratio against the saved base model.";

// What the command line asks for, checked before anything is loaded.
struct PerplexityArgs {
    std::string model, file, save_logits, kl_base;
    int64_t n_ctx = 0;  // 0: 512 or the model's context if smaller (with --kl-base: the file's)
    int64_t batch = 512, max_chunks = -1;
    int64_t stride = 0;  // > 0: Hugging Face's sliding window
    int threads = 1;
    bool json = false, bos_chunks = false;
    AblationRequest ablation;
    bool sliding() const { return stride > 0; }
};

void check_combinations(const PerplexityArgs& a) {
    const bool kl = !a.kl_base.empty(), save = !a.save_logits.empty();
    if (a.bos_chunks && (a.sliding() || kl || save))
        usage_error("--bos-chunks cannot be combined with --stride, --save-logits or --kl-base");
    if (!kl && a.file.empty()) usage_error("-f/--file is required: the text to score (or --kl-base FILE)");
    if (a.sliding() && (kl || save))
        usage_error("--save-logits and --kl-base use llama-perplexity's chunks; they cannot be combined with --stride");
    if (kl && save) usage_error("--save-logits and --kl-base cannot be combined");
}

// Returns false when --help was printed.
bool parse_perplexity_args(int argc, char** argv, PerplexityArgs& a) {
    Options opts = command_options(argv[0], kDescription);
    add_model_option(opts);
    add_file_option(opts, "text file to score");
    add_ctx_option(opts, "tokens per chunk; 0 = 512 (llama-perplexity's default) or the model's context if "
                         "smaller; with --kl-base, the file's");
    add_batch_option(opts);
    add_threads_option(opts);
    opts.add_options()("bos-chunks", "scripts/train.py's validation protocol instead: consecutive chunks of -c tokens, "
                                     "each run as BOS + its first tokens, every token scored once (the model card's figure)")(
        "chunks", "score at most N chunks (windows with --stride); -1 = all", number_value("-1"), "N")(
        "stride", "Hugging Face sliding-window protocol with this stride", number_value(), "S")(
        "json", "print one JSON object instead of the text report")(
        "save-logits", "save the scored positions' log-probs (llama.cpp's --kl-divergence-base format)",
        text_value(), "FILE")(
        "kl-base", "compare with log-probs saved by --save-logits (KL divergence)", text_value(), "FILE");
    add_ablation_options(opts, "the scored text");
    ParsedFlags args;
    if (!parse_flags(opts, argc, argv, args, {"", "Attention heads"})) return false;
    a.model = required_option(args, "model", "-m/--model");
    a.n_ctx = int_option(args, "ctx-size", [](int64_t v) { return v == 0 || v >= 2; },
                         "must be 0 (512 or the model's context) or at least 2");
    a.batch = int_option(args, "batch-size", at_least(1));
    a.threads = threads_option(args);
    a.max_chunks = int_option(args, "chunks", at_least(-1));
    if (has(args, "stride")) a.stride = int_option(args, "stride", at_least(1));
    a.json = has(args, "json");
    a.bos_chunks = has(args, "bos-chunks");
    if (has(args, "file")) a.file = args.value("file");
    if (has(args, "save-logits")) a.save_logits = args.value("save-logits");
    if (has(args, "kl-base")) a.kl_base = args.value("kl-base");
    a.ablation = ablation_options(args);
    check_combinations(a);
    return true;
}

// The tokens, the windows and whether each window starts with BOS.
struct Scoring {
    std::vector<int32_t> tokens;
    std::vector<Window> windows;
    PerplexityOptions po;
    int64_t n_ctx = 0;
    std::unique_ptr<LogProbFile> base;  // --kl-base
    std::unique_ptr<Tokenizer> tok;     // the model's (none with --kl-base)
};

// --kl-base: the tokens come from the file; of the vocabulary only BOS matters.
Scoring kl_scoring(const Model& model, const PerplexityArgs& a) {
    Scoring s;
    const GGUFFile& g = model.gguf();
    const int64_t V = model.config().n_vocab;
    s.po.n_vocab = V;
    s.po.bos_first = g.get_bool("tokenizer.ggml.add_bos_token", false);
    s.po.bos_id = int32_t(g.get_uint("tokenizer.ggml.bos_token_id", uint64_t(-1)));
    s.base = std::make_unique<LogProbFile>(a.kl_base);
    if (a.n_ctx != 0 && a.n_ctx != s.base->n_ctx())
        throw std::runtime_error("--kl-base file was computed with a context of " + std::to_string(s.base->n_ctx()) +
                                 ", not " + std::to_string(a.n_ctx) + " (leave -c out to use the file's)");
    s.n_ctx = s.base->n_ctx();
    if (s.n_ctx > model.config().n_ctx)
        throw std::runtime_error("--kl-base file was computed with a context of " + std::to_string(s.n_ctx) +
                                 ", beyond the model's " + std::to_string(model.config().n_ctx) + " positions");
    if (s.base->n_vocab() != V)
        throw std::runtime_error("--kl-base file has a vocabulary of " + std::to_string(s.base->n_vocab()) +
                                 " tokens, the model " + std::to_string(V));
    s.tokens = s.base->tokens();
    int64_t n_chunk = s.base->n_chunk();
    if (a.max_chunks >= 0) n_chunk = std::min(n_chunk, a.max_chunks);
    for (int64_t i = 0; i < n_chunk; ++i) s.windows.push_back(llama_chunk(i, s.n_ctx));
    return s;
}

// -f: the text through the model's tokenizer, cut as the protocol asks (eval/perplexity.h).
Scoring text_scoring(const Model& model, const PerplexityArgs& a) {
    Scoring s;
    s.n_ctx = a.n_ctx != 0 ? a.n_ctx : std::min(kDefaultCtx, model.config().n_ctx);
    check_ctx_size(s.n_ctx, model.config().n_ctx);
    s.tok = make_tokenizer(model.tokenizer_spec());
    const PerplexityProtocol protocol = a.bos_chunks ? PerplexityProtocol::BosChunks
                                        : a.sliding() ? PerplexityProtocol::Sliding
                                                      : PerplexityProtocol::Llama;
    PerplexityPlan plan = plan_perplexity(*s.tok, read_file(a.file, "-f/--file"), model.config().n_vocab, s.n_ctx,
                                          protocol, a.stride, a.max_chunks);
    s.tokens = std::move(plan.tokens);
    s.windows = std::move(plan.windows);
    s.po = plan.opt;
    return s;
}

// --ablate: the heads' z replaced (zero, or the mean over --mean-file or over the scored windows as they are run).
std::unique_ptr<HeadAblation> make_ablation(const Model& model, const PerplexityArgs& a, const Scoring& s) {
    std::vector<std::vector<int32_t>> own;
    if (a.ablation.mode == AblationMode::Mean && a.ablation.mean_file.empty())
        for (const Window& w : s.windows) {
            own.emplace_back(s.tokens.begin() + w.begin, s.tokens.begin() + w.end - 1);
            if (s.po.bos_first) own.back()[0] = s.po.bos_id;
        }
    auto ablation = ablation_from_options(model, a.ablation, own, s.n_ctx, a.threads, s.tok.get());
    if (ablation)
        std::fprintf(stderr, "perplexity: ablating %zu head(s), %s mode\n", ablation->heads().size(),
                     ablation_mode_name(a.ablation.mode));
    return ablation;
}

void print_setup(const PerplexityArgs& a, const Scoring& s, int64_t n_batch) {
    int64_t n_scored = 0;
    for (const Window& w : s.windows) n_scored += w.n_scored();
    const std::string how = a.sliding() ? "stride " + std::to_string(a.stride)
                                        : (s.po.bos_first ? "BOS first in each chunk" : "no BOS");
    std::fprintf(stderr, "perplexity: %zu tokens, context %lld, %zu %s, %lld tokens scored, %s, batch %lld, %d threads\n",
                 s.tokens.size(), (long long)s.n_ctx, s.windows.size(), a.sliding() ? "windows" : "chunks",
                 (long long)n_scored, how.c_str(), (long long)n_batch, a.threads);
}

struct Outcome {
    PerplexityResult r;
    KLStats kl;
    double seconds = 0;
    std::string running;    // "[1]x,[2]y,..."
    bool streamed = false;  // already printed as each chunk ended
};

// Runs every window: running values on stdout as each chunk ends, unless stdout is the
// terminal the bar is drawn on (then the bar shows them and they follow at the end);
// the scored rows to --save-logits; KL divergence against --kl-base.
Outcome run_scoring(Transformer& tf, const PerplexityArgs& a, const Scoring& s) {
    const int64_t V = s.po.n_vocab;
    std::unique_ptr<LogProbWriter> saver;
    if (!a.save_logits.empty())
        saver = std::make_unique<LogProbWriter>(a.save_logits, s.n_ctx, V, int64_t(s.windows.size()), s.tokens.data());
    Outcome out;
    ProgressBar bar("perplexity", int64_t(s.windows.size()), stderr, is_terminal(stderr) && !a.json);
    out.streamed = !a.json && !(bar.drawing() && is_terminal(stdout));
    const WindowObserver observe = [&](size_t i, const Window& w, const float* logits, const PerplexityResult& so_far) {
        for (int64_t k = 0; k < w.n_scored(); ++k) {
            if (saver) saver->add_row(logits + k * V);
            if (s.base) out.kl.add(logits + k * V, V, s.base->row(int64_t(i), k), s.tokens[size_t(w.first_target + k)]);
        }
        char value[64];
        std::snprintf(value, sizeof value, "[%zu]%.4f,", i + 1, so_far.running_ppl.back());
        out.running += value;
        if (out.streamed) {
            std::fputs(value, stdout);
            std::fflush(stdout);
        }
        char note[64];
        std::snprintf(note, sizeof note, "PPL %.4f", so_far.running_ppl.back());
        bar.update(int64_t(i + 1), note);
    };
    out.r = compute_perplexity(s.tokens, s.windows, s.po, transformer_evaluator(tf), observe);
    if (saver) saver->commit();
    out.seconds = bar.elapsed_seconds();
    bar.finish(std::to_string(out.r.stats.count) + " tokens scored");
    return out;
}

// --json: one object (the running values, the final estimate and, with --kl-base, the KL report).
void print_json(const PerplexityArgs& a, const Scoring& s, const Outcome& out) {
    Json o = Json::object();
    o["model"] = a.model;
    o["protocol"] = a.sliding() ? "sliding-window" : a.bos_chunks ? "bos-chunks" : "llama-perplexity";
    o["n_ctx"] = s.n_ctx;
    if (a.sliding()) o["stride"] = a.stride;
    o["bos_first"] = s.po.bos_first;
    o["n_tokens"] = s.tokens.size();
    o["n_chunks"] = s.windows.size();
    o["n_scored"] = out.r.stats.count;
    o["ppl"] = num(out.r.ppl());
    o["ppl_error"] = num(out.r.ppl_error());
    o["mean_nll"] = num(out.r.stats.mean());
    Json arr = Json::array();
    for (double v : out.r.running_ppl) arr.push_back(num(v));
    o["running_ppl"] = std::move(arr);
    o["seconds"] = num(out.seconds);
    if (s.base) o["kl"] = kl_json(out.kl.report());
    std::printf("%s\n", json_dump(o).c_str());
}

void print_text(const Scoring& s, const Outcome& out) {
    if (!out.streamed) std::fputs(out.running.c_str(), stdout);
    std::printf("\n");
    const PerplexityResult& r = out.r;
    if (r.ppl_error() > 0) std::printf("Final estimate: PPL = %.4f +/- %.5f\n", r.ppl(), r.ppl_error());
    else std::printf("Final estimate: PPL = %.4f (too few tokens for an error estimate)\n", r.ppl());
    if (s.base) std::printf("\n%s", format_kl_report(out.kl.report()).c_str());
}

}  // namespace

int cmd_perplexity(int argc, char** argv) {
    PerplexityArgs a;
    if (!parse_perplexity_args(argc, argv, a)) return 0;
    auto model = Model::load(a.model);
    check_ablation(a.ablation, model->config());
    const Scoring s = a.kl_base.empty() ? text_scoring(*model, a) : kl_scoring(*model, a);
    TransformerOptions to;
    to.n_ctx = s.n_ctx;
    to.n_batch = std::min(a.batch, s.n_ctx);
    to.n_threads = a.threads;
    Transformer tf(*model, to);
    const auto ablation = make_ablation(*model, a, s);
    if (ablation) tf.set_hooks(ablation.get());
    print_setup(a, s, to.n_batch);
    const Outcome out = run_scoring(tf, a, s);
    if (a.json) print_json(a, s, out);
    else print_text(s, out);
    return 0;
}

}  // namespace minigpt::cli

namespace {
minigpt::cli::RegisterCommand reg{"perplexity", minigpt::cli::cmd_perplexity,
                                  "perplexity of a text as llama-perplexity measures it; KL divergence vs a base model",
                                  30};
}
