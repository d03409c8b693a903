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
#include "runtime/model.h"
#include "runtime/profile.h"
#include "eval/sampler.h"
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

}  // namespace

int cmd_generate(int argc, char** argv) {
    GenerateOptions o;
    if (!parse_generate_options(argc, argv, o)) return 0;

    auto model = Model::load(o.model_path);
    const Config& cfg = model->config();
    if (o.n_ctx > cfg.n_ctx)
        usage_error("--ctx-size " + std::to_string(o.n_ctx) + " exceeds the model's context length of " +
                    std::to_string(cfg.n_ctx));
    const int64_t n_ctx = o.n_ctx > 0 ? o.n_ctx : cfg.n_ctx;
    const std::unique_ptr<Tokenizer> tok = make_tokenizer(model->tokenizer_spec());

    std::vector<int32_t> ids;
    const size_t n_added = prompt_ids(o, *tok, ids);
    if (ids.empty()) usage_error("the prompt is empty (the model adds no BOS token); give some text");
    for (int32_t id : ids)
        if (id < 0 || id >= cfg.n_vocab)
            usage_error("--ids: token id " + std::to_string(id) + " is outside the vocabulary (0.." +
                        std::to_string(cfg.n_vocab - 1) + ")");
    const int64_t n_prompt = int64_t(ids.size());
    if (n_prompt >= n_ctx)
        usage_error("the prompt is " + std::to_string(n_prompt) + " tokens but the context holds " +
                    std::to_string(n_ctx) + " (room is needed for at least one generated token; raise -c/--ctx-size "
                    "up to the model's " + std::to_string(cfg.n_ctx) + " or shorten the prompt)");

    TransformerOptions to;
    to.n_ctx = n_ctx;
    to.n_batch = o.n_batch;
    to.n_threads = o.n_threads;
    Transformer tf(*model, to);
    SamplerParams sp = o.sampling;
    if (o.ignore_eos) sp.ban_token = tok->eos_id();
    sp.model_probability = o.json;  // one more pass over the vocabulary per token: only when reported
    Sampler sampler(sp, int32_t(cfg.n_vocab));
    StreamDecoder decoder(*tok);
    StopFilter stop_filter(o.stops);
    // Attention-head analysis (--ablate, --attention, --trace); attaches nothing when unused.
    AnalysisSession analysis(*model, *tok, o.analysis, o.n_threads);
    analysis.begin(tf, ids);
    Profile profile;
    if (o.profile) tf.set_profile(&profile);

    // The prompt goes through the decoder even when not shown, so that the
    // continuation decodes as it would after it (leading spaces, UTF-8 state).
    std::string prompt_echo;
    for (size_t i = n_added; i < ids.size(); ++i) prompt_echo += decoder.push(ids[i]);
    if (o.display_prompt && !o.json) write_out(prompt_echo);

    const auto t_start = Clock::now();
    const float* logits = tf.forward(ids.data(), n_prompt);
    const double t_prefill = seconds_since(t_start);

    std::vector<int32_t>& history = ids;  // prompt, then every generated id
    history.reserve(size_t(n_ctx) + 1);
    const int32_t eos = tok->eos_id();
    int64_t n_generated = 0;
    double t_first = 0;
    StopReason reason = StopReason::kLength;
    while (o.n_predict < 0 || n_generated < o.n_predict) {
        int32_t id;
        {
            ProfileScope timer(o.profile ? &profile : nullptr, Part::Sampling);
            id = sampler.sample(logits, history.data(), history.size());
        }
        analysis.step(tf.pos(), logits, id);
        ++n_generated;
        if (n_generated == 1) t_first = seconds_since(t_start);
        const bool end_of_text = id == eos && !o.ignore_eos;
        history.push_back(id);
        // Is this the last token? Then whatever the decoder holds back comes out now.
        bool last = end_of_text || (o.n_predict >= 0 && n_generated >= o.n_predict) || n_prompt + n_generated >= n_ctx;
        std::string text = end_of_text ? std::string() : decoder.push(id);
        if (last) text += decoder.flush();
        std::string visible = stop_filter.push(text);
        if (stop_filter.stopped()) last = true;
        else if (last) visible += stop_filter.finish();
        if (o.json) print_json_token(id, text, tok->token_bytes(id), sampler.chosen_probability(),
                                     sampler.chosen_model_probability());
        else write_out(visible);
        if (last) {
            reason = end_of_text ? StopReason::kEndOfText
                     : stop_filter.stopped() ? StopReason::kStopString
                     : (o.n_predict >= 0 && n_generated >= o.n_predict) ? StopReason::kLength
                     : StopReason::kContext;
            break;
        }
        logits = tf.forward(&id, 1);
    }
    const double t_total = seconds_since(t_start);
    analysis.finish(history);
    if (!o.json && isatty(fileno(stdout))) write_out("\n");

    if (reason == StopReason::kContext)
        std::fprintf(stderr, "minigpt generate: context full (%lld tokens: %lld prompt + %lld generated); stopped\n",
                     (long long)n_ctx, (long long)n_prompt, (long long)n_generated);
    if (o.stats) {
        // Decode: the tokens after the first, from the first to the last (llama.cpp's "eval").
        const double decode_s = t_total - t_first;
        const int64_t n_decoded = n_generated > 1 ? n_generated - 1 : 0;
        std::fprintf(stderr, "seed: %llu%s\n", (unsigned long long)sp.seed, o.seed_given ? "" : " (from the clock)");
        std::fprintf(stderr, "threads: %d, context: %lld, batch: %lld\n", o.n_threads, (long long)n_ctx,
                     (long long)o.n_batch);
        std::fprintf(stderr, "prompt: %lld tokens, prefill %.2f ms (%.1f tokens/s)\n", (long long)n_prompt,
                     t_prefill * 1e3, double(n_prompt) / t_prefill);
        std::fprintf(stderr, "generated: %lld tokens; decode %lld tokens in %.2f ms (%.1f tokens/s)\n",
                     (long long)n_generated, (long long)n_decoded, decode_s * 1e3,
                     n_decoded > 0 ? double(n_decoded) / decode_s : 0.0);
        std::fprintf(stderr, "time to first token: %.2f ms; total %.2f ms; stopped: %s\n", t_first * 1e3,
                     t_total * 1e3, n_generated > 0 ? reason_name(reason) : "-n 0");
    }
    if (o.profile) std::fprintf(stderr, "%s", profile.report().c_str());
    return 0;
}

}  // namespace minigpt::cli

namespace {
minigpt::cli::RegisterCommand reg{"generate", minigpt::cli::cmd_generate,
                                  "generate text from a prompt (samplers, streaming, --json, --stats)", 10};
}
