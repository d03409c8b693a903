// minigpt logits: the raw next-token logits for a sequence of ids, optionally
// with attention heads ablated and the attention weights exported, for
// checking the forward pass and interventions against other engines (the tests
// compare them with scripts/reference.py, a float64 numpy forward pass with the
// same ablation, and with llama.cpp). `minigpt heads logits` is this command.
// Two ways to run the same sequence:
//   prefill  all ids in batches of -b tokens (default: one batch)
//   decode   one id at a time through the KV cache
#include <algorithm>
#include <cstdio>
#include <memory>


#include "analysis/ablation.h"
#include "analysis/attention_export.h"
#include "cli/args.h"
#include "cli/commands.h"
#include "cli/heads_common.h"
#include "cli/heads_flags.h"
#include "eval/text_windows.h"
#include "runtime/model.h"
#include "runtime/multi_hooks.h"
#include "runtime/transformer.h"
#include "util/memory_usage.h"
#include "util/npy.h"

namespace minigpt::cli {

namespace {

struct LogitsArgs {
    std::string model, out, attention;
    std::vector<int32_t> ids, mean_ids;
    bool decode = false, all = false, mem = false;
    int64_t batch = 512;
    int threads = 1;
    AblationRequest ablation;
    AttentionDType attention_type = AttentionDType::F16;
};

// Returns false when --help was printed.
bool parse_logits_args(int argc, char** argv, LogitsArgs& a) {
    Options opts = command_options(
        argv[0], "Print or save the logits of a sequence of token ids, optionally with attention heads ablated "
                 "(--ablate) and every layer's and head's attention weights written to a file (--attention).\n"
                 "`minigpt logits` and `minigpt heads logits` are the same command.");
    add_model_option(opts);
    add_ids_option(opts);
    add_batch_option(opts);
    add_threads_option(opts);
    opts.add_options()("all", "logits of every position, not only the last")(
        "mode", "prefill (batches) or decode (one token at a time)", text_value("prefill"),
        "MODE")("o,out", "write float32 logits to this .npy file", text_value(), "FILE")(
        "mem", "print file size, KV cache size and peak resident memory (weights are mapped, not copied)");
    add_ablation_options(opts, "--mean-ids, else --ids");
    opts.add_options("Attention heads")("mean-ids", "ids of the mean-ablation reference text instead of --mean-file",
                                        text_value(), "IDS");
    add_attention_options(opts, "write every layer's and head's attention weights to FILE (docs/attention-format.md)");
    ParsedFlags args;
    if (!parse_flags(opts, argc, argv, args, {"", "Attention heads"})) return false;

    a.model = required_option(args, "model", "-m/--model");
    a.ids = parse_ids(required_option(args, "ids", "--ids"), "ids");
    const std::string mode = args.value("mode");
    if (mode != "prefill" && mode != "decode") usage_error("--mode: must be prefill or decode, got \"" + mode + "\"");
    a.decode = mode == "decode";
    a.batch = int_option(args, "batch-size", at_least(1));
    a.threads = threads_option(args);
    a.all = has(args, "all");
    a.mem = has(args, "mem");
    if (has(args, "out")) a.out = args.value("out");
    a.ablation = ablation_options(args);
    if (has(args, "mean-ids")) {
        if (!a.ablation.mean_file.empty()) usage_error("give --mean-ids or --mean-file, not both");
        if (a.ablation.heads.empty() || a.ablation.mode != AblationMode::Mean)
            usage_error("--mean-ids needs --ablate with --ablate-mode mean");
        a.mean_ids = parse_ids(args.value("mean-ids"), "mean-ids");
    }
    if (has(args, "attention")) a.attention = args.value("attention");
    a.attention_type = attention_type_option(args);
    return true;
}

void check_ids(const std::vector<int32_t>& ids, const Config& c, const std::string& option) {
    check_vocab_ids(ids, c.n_vocab, option);
    if (int64_t(ids.size()) > c.n_ctx)
        usage_error(option + ": " + std::to_string(ids.size()) + " ids exceed the model's context of " +
                    std::to_string(c.n_ctx) + " positions");
}

// The logits of the last position, or of every one with `all`: (n, V) or (V).
std::vector<float> run_ids(Transformer& tf, const std::vector<int32_t>& ids, bool decode, bool all) {
    const int64_t V = tf.config().n_vocab, n = int64_t(ids.size());
    std::vector<float> out(size_t(all ? n * V : V));
    if (decode) {
        for (int64_t i = 0; i < n; ++i) {
            const float* l = tf.forward(&ids[size_t(i)], 1);
            if (all || i == n - 1) std::copy(l, l + V, out.begin() + (all ? i * V : 0));
        }
    } else {
        const float* l = tf.forward(ids.data(), n, all);
        std::copy(l, l + out.size(), out.begin());
    }
    return out;
}

void report(const LogitsArgs& a, const Model& model, const Transformer& tf, const std::vector<float>& out) {
    const int64_t V = model.config().n_vocab, n = int64_t(a.ids.size());
    const float* last = out.data() + (a.all ? (n - 1) * V : 0);
    const int64_t best = std::max_element(last, last + V) - last;
    std::printf("positions %lld, vocab %lld, argmax of last position %lld (logit %.6f)\n", (long long)n, (long long)V,
                (long long)best, last[best]);
    if (a.mem) {
        const double mib = 1 << 20;
        std::printf("file %.1f MiB, KV cache %.1f MiB, peak resident %.1f MiB, resident now %.1f MiB\n",
                    double(model.gguf().file_size()) / mib, double(tf.kv_cache_bytes()) / mib,
                    double(peak_resident_bytes()) / mib, double(resident_bytes()) / mib);
    }
    if (!a.out.empty()) {
        if (a.all) write_npy_f32(a.out, out.data(), {n, V});
        else write_npy_f32(a.out, out.data(), {V});
    }
}

}  // namespace

int cmd_logits(int argc, char** argv) {
    LogitsArgs a;
    if (!parse_logits_args(argc, argv, a)) return 0;
    auto model = Model::load(a.model);
    const Config& c = model->config();
    check_ids(a.ids, c, "--ids");
    check_ids(a.mean_ids, c, "--mean-ids");
    check_ablation(a.ablation, c);

    MultiHooks hooks;
    // Mean mode's reference: --mean-file, else --mean-ids, else --ids.
    const auto own = split_windows(a.mean_ids.empty() ? a.ids : a.mean_ids, c.n_ctx, -1);
    const auto ablation = ablation_from_options(*model, a.ablation, own, c.n_ctx, a.threads);
    if (ablation) {
        hooks.add(ablation.get());  // first: the attention export sees the ablated run
        std::fprintf(stderr, "ablating %zu head(s), %s mode\n", ablation->heads().size(),
                     ablation_mode_name(ablation->mode()));
    }
    std::unique_ptr<AttentionWriter> attention;
    if (!a.attention.empty()) {
        attention = std::make_unique<AttentionWriter>(a.attention, c, a.attention_type);
        hooks.add(attention.get());
    }
    TransformerOptions to;
    to.n_threads = a.threads;
    to.n_batch = a.decode ? 1 : a.batch;
    Transformer tf(*model, to);
    if (!hooks.empty()) tf.set_hooks(&hooks);
    const std::vector<float> out = run_ids(tf, a.ids, a.decode, a.all);
    if (attention) attention->finish(a.ids);
    report(a, *model, tf, out);
    return 0;
}

// `minigpt heads logits`, registered in cmd_heads.cpp: the same command.
int heads_logits(int argc, char** argv) { return cmd_logits(argc, argv); }

}  // namespace minigpt::cli

namespace {
minigpt::cli::RegisterCommand reg{"logits", minigpt::cli::cmd_logits,
                                  "logits of token ids, optionally with heads ablated and attention exported "
                                  "(to check against other engines)",
                                  70};
}
