// minigpt generate: prompt -> tokens -> prefill -> sample, decode and stream
// each token until end-of-text, -n tokens, a stop string or a full context.
#include <chrono>
#include <cstdio>
#include <string>
#include <unistd.h>
#include <vector>

#include <nlohmann/json.hpp>

#include "analysis/analysis_session.h"
#include "cli/args.h"
#include "cli/commands.h"
#include "cli/generate_args.h"
#include "cli/generate_text.h"
#include "cli/heads_flags.h"
#include "runtime/model.h"
#include "runtime/profile.h"
#include "eval/sampler.h"
#include "kernels/kernels.h"
#include "tokenizer/tokenizer.h"
#include "runtime/transformer.h"
#include "util/json.h"

namespace minigpt::cli {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

void write_out(const std::string& s) {
    if (s.empty()) return;
    std::fwrite(s.data(), 1, s.size(), stdout);
    std::fflush(stdout);  // stream token by token
}

enum class StopReason { kLength, kEndOfText, kStopString, kContext };

const char* reason_name(StopReason r) {
    switch (r) {
        case StopReason::kLength: return "n-predict reached";
        case StopReason::kEndOfText: return "end-of-text";
        case StopReason::kStopString: return "stop string";
        case StopReason::kContext: return "context full";
    }
    return "?";
}

// The prompt's ids: --ids verbatim; text through the model's tokenizer, with
// BOS first when the tokenizer asks for it. Returns how many leading ids we added.
size_t prompt_ids(const GenerateOptions& o, const Tokenizer& tok, std::vector<int32_t>& ids) {
    if (!o.have_text) {
        ids = o.prompt_ids;
        return 0;
    }
    ids.clear();
    size_t added = 0;
    if (tok.add_bos() && tok.bos_id() >= 0) {
        ids.push_back(tok.bos_id());
        added = 1;
    }
    const std::vector<int32_t> text_ids = tok.encode(o.prompt_text, o.allow_special);
    ids.insert(ids.end(), text_ids.begin(), text_ids.end());
    return added;
}

void print_json_token(int32_t id, const std::string& text, const std::string& piece, float p, float p_model) {
    const Json token = {{"id", id}, {"text", text}, {"piece", piece}, {"probability", json_rounded(p, 6)},
                        {"model_probability", json_rounded(p_model, 6)}};
    write_out(json_dump(token) + "\n");
}

// The prompt's ids, checked against the vocabulary and the context (usage errors).
// Returns how many leading ids we added (BOS), which are not echoed.
size_t checked_prompt(const GenerateOptions& o, const Tokenizer& tok, const Config& cfg, int64_t n_ctx,
                      std::vector<int32_t>& ids) {
    const size_t n_added = prompt_ids(o, tok, ids);
    if (ids.empty()) usage_error("the prompt is empty (the model adds no BOS token); give some text");
    for (int32_t id : ids)
        if (id < 0 || id >= cfg.n_vocab)
            usage_error("--ids: token id " + std::to_string(id) + " is outside the vocabulary (0.." +
                        std::to_string(cfg.n_vocab - 1) + ")");
    if (int64_t(ids.size()) >= n_ctx)
        usage_error("the prompt is " + std::to_string(ids.size()) + " tokens but the context holds " +
                    std::to_string(n_ctx) + " (room is needed for at least one generated token; raise -c/--ctx-size "
                    "up to the model's " + std::to_string(cfg.n_ctx) + " or shorten the prompt)");
    return n_added;
}

// What one generation runs on, set up by cmd_generate.
struct Session {
    const GenerateOptions& o;
    const Tokenizer& tok;
    Transformer& tf;
    Sampler& sampler;
    AnalysisSession& analysis;
    Profile* profile;  // --profile, else null
    int64_t n_ctx;
};

struct Generation {
    int64_t n_prompt = 0, n_generated = 0;
    double t_prefill = 0, t_first = 0, t_total = 0;  // seconds from the start of the prefill
    StopReason reason = StopReason::kLength;
};

// Prefill, then sample, stream and decode one token at a time until end-of-text,
// -n tokens, a stop string or a full context. history: the prompt, then every
// generated id; n_added leading ids (BOS) are not echoed.
Generation generate(Session& s, std::vector<int32_t>& history, size_t n_added) {
    const GenerateOptions& o = s.o;
    StreamDecoder decoder(s.tok);
    StopFilter stop_filter(o.stops);
    // The prompt goes through the decoder even when not shown, so that the
    // continuation decodes as it would after it (leading spaces, UTF-8 state).
    std::string prompt_echo;
    for (size_t i = n_added; i < history.size(); ++i) prompt_echo += decoder.push(history[i]);
    if (o.display_prompt && !o.json) write_out(prompt_echo);

    Generation g;
    g.n_prompt = int64_t(history.size());
    const auto t_start = Clock::now();
    const float* logits = s.tf.forward(history.data(), g.n_prompt);
    g.t_prefill = seconds_since(t_start);
    history.reserve(size_t(s.n_ctx) + 1);
    while (o.n_predict < 0 || g.n_generated < o.n_predict) {
        int32_t id;
        {
            ProfileScope timer(s.profile, Part::Sampling);
            id = s.sampler.sample(logits, history.data(), history.size());
        }
        s.analysis.step(s.tf.pos(), logits, id);
        if (++g.n_generated == 1) g.t_first = seconds_since(t_start);
        const bool end_of_text = id == s.tok.eos_id() && !o.ignore_eos;
        const bool length = o.n_predict >= 0 && g.n_generated >= o.n_predict;
        history.push_back(id);
        // Is this the last token? Then whatever the decoder holds back comes out now.
        bool last = end_of_text || length || g.n_prompt + g.n_generated >= s.n_ctx;
        std::string text = end_of_text ? std::string() : decoder.push(id);
        if (last) text += decoder.flush();
        std::string visible = stop_filter.push(text);
        if (stop_filter.stopped()) last = true;
        else if (last) visible += stop_filter.finish();
        if (o.json) print_json_token(id, text, s.tok.token_bytes(id), s.sampler.chosen_probability(),
                                     s.sampler.chosen_model_probability());
        else write_out(visible);
        if (last) {
            g.reason = end_of_text ? StopReason::kEndOfText
                       : stop_filter.stopped() ? StopReason::kStopString
                       : length ? StopReason::kLength
                       : StopReason::kContext;
            break;
        }
        logits = s.tf.forward(&id, 1);
    }
    g.t_total = seconds_since(t_start);
    return g;
}

// Seconds from the start of the command to each step of loading.
struct LoadTimes {
    double model = 0, tokenizer = 0, ready = 0;  // mapped + checked; tokenizer built; prompt + buffers
};

// --stats on stderr. Decode: the tokens after the first, from the first to the
// last (llama.cpp's "eval").
void print_stats(const GenerateOptions& o, uint64_t seed, int64_t n_ctx, const LoadTimes& load, const Generation& g,
                 const Model& model) {
    const double decode_s = g.t_total - g.t_first;
    const int64_t n_decoded = g.n_generated > 1 ? g.n_generated - 1 : 0;
    std::fprintf(stderr, "seed: %llu%s\n", (unsigned long long)seed, o.seed_given ? "" : " (from the clock)");
    std::fprintf(stderr, "threads: %d, context: %lld, batch: %lld, kernels: %s\n", o.n_threads, (long long)n_ctx,
                 (long long)o.n_batch, kernel_isa());
    std::fprintf(stderr, "prompt: %lld tokens, prefill %.2f ms (%.1f tokens/s)\n", (long long)g.n_prompt,
                 g.t_prefill * 1e3, double(g.n_prompt) / g.t_prefill);
    std::fprintf(stderr, "generated: %lld tokens; decode %lld tokens in %.2f ms (%.1f tokens/s)\n",
                 (long long)g.n_generated, (long long)n_decoded, decode_s * 1e3,
                 n_decoded > 0 ? double(n_decoded) / decode_s : 0.0);
    std::fprintf(stderr, "time to first token: %.2f ms; total %.2f ms; stopped: %s\n", g.t_first * 1e3,
                 g.t_total * 1e3, g.n_generated > 0 ? reason_name(g.reason) : "-n 0");
    std::fprintf(stderr,
                 "load: %.2f ms (model mapped and checked %.2f, tokenizer %.2f, prompt and buffers %.2f); "
                 "command start to first token: %.2f ms\n",
                 load.ready * 1e3, load.model * 1e3, (load.tokenizer - load.model) * 1e3,
                 (load.ready - load.tokenizer) * 1e3, (load.ready + g.t_first) * 1e3);
    // How the page cache holds the file decides the first pass over the weights
    // (README, "Speed"): in 2 MiB pages it costs milliseconds, in 4 KiB ones far more.
    std::fprintf(stderr, "weights: %.0f %% of the mapped file in 2 MiB pages\n",
                 100.0 * model.gguf().file().mapped_in_huge_pages());
}

}  // namespace

int cmd_generate(int argc, char** argv) {
    const auto t_start = Clock::now();
    GenerateOptions o;
    if (!parse_generate_options(argc, argv, o)) return 0;

    LoadTimes load;
    auto model = Model::load(o.model_path);
    // The weights' page tables fill in the background while the tokenizer is built (one
    // thread at work, the other cores idle).
    model->populate_weights_in_background();
    load.model = seconds_since(t_start);
    const Config& cfg = model->config();
    check_ctx_size(o.n_ctx, cfg.n_ctx);
    check_ablation(o.analysis.ablation, cfg);
    const int64_t n_ctx = o.n_ctx > 0 ? o.n_ctx : cfg.n_ctx;
    const std::unique_ptr<Tokenizer> tok = make_tokenizer(model->tokenizer_spec());
    // From here the forward pass's threads touch the weights themselves: a third
    // thread populating beside them competed for the cores (2-core VM, 124M f32 in
    // 4 KiB folios, 15 runs each: whole process 254 ms median against 307 ms).
    model->stop_populating_weights();
    load.tokenizer = seconds_since(t_start);
    std::vector<int32_t> ids;
    const size_t n_added = checked_prompt(o, *tok, cfg, n_ctx, ids);

    TransformerOptions to;
    to.n_ctx = n_ctx;
    to.n_batch = o.n_batch;
    to.n_threads = o.n_threads;
    Transformer tf(*model, to);
    SamplerParams sp = o.sampling;
    if (o.ignore_eos) sp.ban_token = tok->eos_id();
    sp.model_probability = o.json;  // one more pass over the vocabulary per token: only when reported
    Sampler sampler(sp, int32_t(cfg.n_vocab));
    // Attention-head analysis (--ablate, --attention, --trace); attaches nothing when unused.
    AnalysisSession analysis(*model, *tok, o.analysis, o.n_threads);
    analysis.begin(tf, ids);
    Profile profile;
    if (o.profile) tf.set_profile(&profile);

    Session s{o, *tok, tf, sampler, analysis, o.profile ? &profile : nullptr, n_ctx};
    load.ready = seconds_since(t_start);
    const Generation g = generate(s, ids, n_added);
    analysis.finish(ids);
    if (!o.json && isatty(fileno(stdout))) write_out("\n");
    if (g.reason == StopReason::kContext)
        std::fprintf(stderr, "minigpt generate: context full (%lld tokens: %lld prompt + %lld generated); stopped\n",
                     (long long)n_ctx, (long long)g.n_prompt, (long long)g.n_generated);
    if (o.stats) print_stats(o, sp.seed, n_ctx, load, g, *model);
    if (o.profile) std::fprintf(stderr, "%s", profile.report().c_str());
    return 0;
}

}  // namespace minigpt::cli

namespace {
minigpt::cli::RegisterCommand reg{"generate", minigpt::cli::cmd_generate,
                                  "generate text from a prompt (samplers, streaming, --json, --stats)", 10};
}
