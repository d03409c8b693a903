// minigpt perplexity: llama-perplexity's measurement, number for number.
// Protocols and statistics: src/eval/perplexity.h; the log-prob file and the KL
// report: src/eval/kl_divergence.h.
#include <algorithm>
#include <cstdio>
#include <cxxopts.hpp>
#include <nlohmann/json.hpp>
#include <fstream>
#include <memory>
#include <sstream>
#include <thread>

#include "cli/commands.h"
#include "eval/kl_divergence.h"
#include "runtime/model.h"
#include "analysis/ablation.h"
#include "cli/heads_flags.h"
#include "eval/perplexity.h"
#include "util/progress.h"
#include "tokenizer/tokenizer.h"
#include "runtime/transformer.h"
#include "util/json.h"

namespace minigpt::cli {

namespace {

constexpr int64_t kDefaultCtx = 512;  // llama-perplexity's default -c

std::string read_text(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    if (!f) throw std::runtime_error(path + ": cannot open the text file");
    std::ostringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

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

}  // namespace

int cmd_perplexity(int argc, char** argv) {
    cxxopts::Options opts(
        argv[0],
        "Perplexity of a text, by default exactly as llama-perplexity measures it: the whole file tokenized "
        "(BOS first when the vocabulary adds BOS), cut into floor(n_tokens / c) chunks of c tokens, each evaluated "
        "from an empty cache with its first token replaced by BOS when the vocabulary adds BOS, scoring only the "
        "second half of each chunk; PPL = exp(mean NLL), ± as llama.cpp computes it. Prints [i]running-PPL values "
        "and \"Final estimate: PPL = x +/- y\".\n"
        "--stride S: Hugging Face's sliding window instead (windows of c tokens every S tokens, each scoring only "
        "the tokens not scored before).\n"
        "--save-logits FILE / --kl-base FILE: llama-perplexity's --kl-divergence-base file format (either tool "
        "reads the other's); --kl-base runs this model on the file's tokens and prints mean KL divergence, top-1 "
        "agreement and the PPL ratio against the saved base model.");
    opts.add_options()("m,model", "GGUF model", cxxopts::value<std::string>())(
        "f,file", "text file to score", cxxopts::value<std::string>())(
        "c,ctx-size", "context (tokens per chunk); default 512 or the model's context if smaller",
        cxxopts::value<int64_t>())("b,batch-size", "tokens per forward batch",
                                   cxxopts::value<int64_t>()->default_value("512"))(
        "t,threads", "threads (default: all cores)",
        cxxopts::value<int>()->default_value(std::to_string(std::max(1u, std::thread::hardware_concurrency()))))(
        "bos-chunks", "scripts/train.py's validation protocol instead: consecutive chunks of -c tokens, each "
                      "run as BOS + its first tokens, every token scored once (the model card's figure)")(
        "chunks", "score at most N chunks (windows with --stride)", cxxopts::value<int64_t>()->default_value("-1"))(
        "stride", "Hugging Face sliding-window protocol with this stride", cxxopts::value<int64_t>())(
        "json", "print one JSON object instead of the text report")(
        "save-logits", "save the scored positions' log-probs (llama.cpp's --kl-divergence-base format)",
        cxxopts::value<std::string>())("kl-base", "compare with log-probs saved by --save-logits (KL divergence)",
                                       cxxopts::value<std::string>())("h,help", "this help");
    add_analysis_options(opts, /*with_trace=*/false);
    auto args = opts.parse(argc, argv);
    if (args.count("help")) {
        std::printf("%s\n", opts.help().c_str());
        return 0;
    }
    if (!args.count("model")) throw cxxopts::exceptions::missing_argument("model");
    const bool kl_mode = args.count("kl-base") > 0, sliding = args.count("stride") > 0, json = args.count("json") > 0;
    const bool bos_chunked = args.count("bos-chunks") > 0;
    if (bos_chunked && (sliding || kl_mode || args.count("save-logits")))
        throw std::runtime_error("--bos-chunks cannot be combined with --stride, --save-logits or --kl-base");
    if (!kl_mode && !args.count("file")) throw cxxopts::exceptions::missing_argument("file");
    if (sliding && (kl_mode || args.count("save-logits")))
        throw std::runtime_error("--save-logits and --kl-base use llama-perplexity's chunks; they cannot be combined with --stride");
    if (kl_mode && args.count("save-logits")) throw std::runtime_error("--save-logits and --kl-base cannot be combined");
    const int threads = args["threads"].as<int>();
    const int64_t batch = args["batch-size"].as<int64_t>(), max_chunks = args["chunks"].as<int64_t>();
    if (threads < 1) throw std::runtime_error("--threads must be at least 1");
    if (batch < 1) throw std::runtime_error("--batch-size must be at least 1");

    auto model = Model::load(args["model"].as<std::string>());
    const int64_t V = model->config().n_vocab;
    int64_t n_ctx = args.count("ctx-size") ? args["ctx-size"].as<int64_t>() : std::min(kDefaultCtx, model->config().n_ctx);

    // The tokens, the windows and whether each window starts with BOS.
    std::vector<int32_t> tokens;
    std::vector<Window> windows;
    PerplexityOptions po;
    po.n_vocab = V;
    std::unique_ptr<LogProbFile> base;
    std::unique_ptr<Tokenizer> tok;
    if (kl_mode) {
        // The tokens come from the file; of the vocabulary only BOS matters.
        const GGUFFile& g = model->gguf();
        po.bos_first = g.get_bool("tokenizer.ggml.add_bos_token", false);
        po.bos_id = int32_t(g.get_uint("tokenizer.ggml.bos_token_id", uint64_t(-1)));
        base = std::make_unique<LogProbFile>(args["kl-base"].as<std::string>());
        if (args.count("ctx-size") && n_ctx != base->n_ctx())
            throw std::runtime_error("--kl-base file was computed with a context of " + std::to_string(base->n_ctx()) +
                                     ", not " + std::to_string(n_ctx) + " (leave -c out to use the file's)");
        n_ctx = base->n_ctx();
        if (base->n_vocab() != V)
            throw std::runtime_error("--kl-base file has a vocabulary of " + std::to_string(base->n_vocab()) +
                                     " tokens, the model " + std::to_string(V));
        tokens = base->tokens();
        int64_t n_chunk = base->n_chunk();
        if (max_chunks >= 0) n_chunk = std::min(n_chunk, max_chunks);
        for (int64_t i = 0; i < n_chunk; ++i) windows.push_back(llama_chunk(i, n_ctx));
    } else {
        // The protocol's tokens and windows (eval/perplexity.h; heads grad reads a text the same way).
        tok = make_tokenizer(model->tokenizer_spec());
        const PerplexityProtocol protocol = bos_chunked ? PerplexityProtocol::BosChunks
                                            : sliding   ? PerplexityProtocol::Sliding
                                                        : PerplexityProtocol::Llama;
        PerplexityPlan plan = plan_perplexity(*tok, read_text(args["file"].as<std::string>()), V, n_ctx, protocol,
                                              sliding ? args["stride"].as<int64_t>() : 0, max_chunks);
        tokens = std::move(plan.tokens);
        windows = std::move(plan.windows);
        po = plan.opt;
    }
    if (n_ctx > model->config().n_ctx)
        throw std::runtime_error("-c " + std::to_string(n_ctx) + " exceeds the model's context of " +
                                 std::to_string(model->config().n_ctx) + " positions");

    TransformerOptions to;
    to.n_ctx = n_ctx;
    to.n_batch = std::min(batch, n_ctx);
    to.n_threads = threads;
    Transformer tf(*model, to);
    const WindowEvaluator eval = transformer_evaluator(tf);

    // --ablate: the heads' z replaced (zero, or the mean over --mean-file or over the scored text).
    const AnalysisOptions analysis = analysis_options(args, /*with_trace=*/false);
    std::unique_ptr<HeadAblation> ablation;
    if (!analysis.ablate.empty()) {
        const Config& cfg = model->config();
        const auto heads = parse_head_list(analysis.ablate, cfg.n_layer, cfg.n_head);
        std::vector<float> means;
        if (analysis.ablate_mode == AblationMode::Mean) {
            std::vector<std::vector<int32_t>> mean_windows;
            if (!analysis.mean_file.empty()) {
                if (!tok) throw std::runtime_error("--mean-file needs the model's tokenizer");
                const std::vector<int32_t> ids = tok->encode(read_text(analysis.mean_file));
                for (size_t i = 0; i < ids.size(); i += size_t(n_ctx))
                    mean_windows.emplace_back(ids.begin() + long(i), ids.begin() + long(std::min(ids.size(), i + size_t(n_ctx))));
            } else {
                for (const Window& w : windows) {
                    mean_windows.emplace_back(tokens.begin() + w.begin, tokens.begin() + w.end - 1);
                    if (po.bos_first) mean_windows.back()[0] = po.bos_id;
                }
            }
            means = mean_head_outputs(*model, mean_windows, threads);
        }
        ablation = std::make_unique<HeadAblation>(model->config(), analysis.ablate_mode, std::move(means));
        ablation->set_heads(heads);
        tf.set_hooks(ablation.get());
        std::fprintf(stderr, "perplexity: ablating %zu head(s), %s mode\n", heads.size(),
                     ablation_mode_name(analysis.ablate_mode));
    }

    int64_t n_scored = 0;
    for (const Window& w : windows) n_scored += w.n_scored();
    std::fprintf(stderr, "perplexity: %zu tokens, context %lld, %zu %s, %lld tokens scored, %s, batch %lld, %d threads\n",
                 tokens.size(), (long long)n_ctx, windows.size(), sliding ? "windows" : "chunks", (long long)n_scored,
                 sliding ? ("stride " + std::to_string(args["stride"].as<int64_t>())).c_str()
                         : (po.bos_first ? "BOS first in each chunk" : "no BOS"),
                 (long long)to.n_batch, threads);

    std::unique_ptr<LogProbWriter> saver;
    if (args.count("save-logits"))
        saver = std::make_unique<LogProbWriter>(args["save-logits"].as<std::string>(), n_ctx, V,
                                                int64_t(windows.size()), tokens.data());
    KLStats kl;

    // Running values go to stdout as each chunk ends, unless stdout is the
    // terminal the bar is drawn on: then the bar shows them and they follow at the end.
    ProgressBar bar("perplexity", int64_t(windows.size()), stderr, is_terminal(stderr) && !json);
    const bool stream_values = !json && !(bar.drawing() && is_terminal(stdout));
    std::string running;
    const WindowObserver observe = [&](size_t i, const Window& w, const float* logits, const PerplexityResult& so_far) {
        for (int64_t k = 0; k < w.n_scored(); ++k) {
            if (saver) saver->add_row(logits + k * V);
            if (base) kl.add(logits + k * V, V, base->row(int64_t(i), k), tokens[size_t(w.first_target + k)]);
        }
        char value[64];
        std::snprintf(value, sizeof value, "[%zu]%.4f,", i + 1, so_far.running_ppl.back());
        running += value;
        if (stream_values) {
            std::fputs(value, stdout);
            std::fflush(stdout);
        }
        char note[64];
        std::snprintf(note, sizeof note, "PPL %.4f", so_far.running_ppl.back());
        bar.update(int64_t(i + 1), note);
    };
    const PerplexityResult r = compute_perplexity(tokens, windows, po, eval, observe);
    if (saver) saver->commit();
    const double seconds = bar.elapsed_seconds();
    bar.finish(std::to_string(r.stats.count) + " tokens scored");

    if (json) {
        Json o = Json::object();
        o["model"] = args["model"].as<std::string>();
        o["protocol"] = sliding ? "sliding-window" : "llama-perplexity";
        o["n_ctx"] = n_ctx;
        if (sliding) o["stride"] = args["stride"].as<int64_t>();
        o["bos_first"] = po.bos_first;
        o["n_tokens"] = tokens.size();
        o["n_chunks"] = windows.size();
        o["n_scored"] = r.stats.count;
        o["ppl"] = num(r.ppl());
        o["ppl_error"] = num(r.ppl_error());
        o["mean_nll"] = num(r.stats.mean());
        Json arr = Json::array();
        for (double v : r.running_ppl) arr.push_back(num(v));
        o["running_ppl"] = std::move(arr);
        o["seconds"] = num(seconds);
        if (base) o["kl"] = kl_json(kl.report());
        std::printf("%s\n", json_dump(o).c_str());
        return 0;
    }
    if (!stream_values) std::fputs(running.c_str(), stdout);
    std::printf("\n");
    if (r.ppl_error() > 0) std::printf("Final estimate: PPL = %.4f +/- %.5f\n", r.ppl(), r.ppl_error());
    else std::printf("Final estimate: PPL = %.4f (too few tokens for an error estimate)\n", r.ppl());
    if (base) std::printf("\n%s", format_kl_report(kl.report()).c_str());
    return 0;
}

}  // namespace minigpt::cli

namespace {
minigpt::cli::RegisterCommand reg{"perplexity", minigpt::cli::cmd_perplexity,
                                  "perplexity of a text as llama-perplexity measures it; KL divergence vs a base model",
                                  30};
}
