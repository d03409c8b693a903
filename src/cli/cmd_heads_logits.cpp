// minigpt heads logits: the logits of a sequence of ids with heads ablated,
// and optionally the attention weights of the run, so that interventions and
// the attention export can be checked against another engine (the tests use
// scripts/reference.py, a float64 numpy forward pass with the same ablation).
#include <algorithm>
#include <cstdio>
#include <memory>

#include <cxxopts.hpp>

#include "analysis/ablation.h"
#include "analysis/attention_export.h"
#include "cli/heads_common.h"
#include "runtime/multi_hooks.h"
#include "util/npy.h"
#include "runtime/transformer.h"

namespace minigpt::cli {

int heads_logits(int argc, char** argv) {
    cxxopts::Options opts(argv[0], "Logits of token ids with attention heads ablated; optional attention export.");
    opts.add_options()("m,model", "GGUF model", cxxopts::value<std::string>())(
        "ids", "token ids, e.g. \"464 2068 7586\"", cxxopts::value<std::string>())(
        "ablate", "heads to ablate: L.H,L.H,L.* (layer and head from 0)", cxxopts::value<std::string>())(
        "ablate-mode", "zero: the head's z is zeroed before the output projection (Hugging Face head_mask); "
                       "mean: replaced by its mean over the positions of an unablated run on --mean-ids/--mean-file",
        cxxopts::value<std::string>()->default_value("zero"))(
        "mean-ids", "ids of the mean-ablation reference text (default: --ids)", cxxopts::value<std::string>())(
        "mean-file", "text file of the mean-ablation reference (model's tokenizer)", cxxopts::value<std::string>())(
        "attention", "write every layer's and head's attention weights to this file (docs/attention-format.md)",
        cxxopts::value<std::string>())(
        "attention-type", "f16 or f32 weights in the attention file", cxxopts::value<std::string>()->default_value("f16"))(
        "all", "logits of every position, not only the last")(
        "mode", "prefill (batches) or decode (one token at a time)", cxxopts::value<std::string>()->default_value("prefill"))(
        "b,batch", "tokens per batch in prefill mode", cxxopts::value<int64_t>()->default_value("512"))(
        "t,threads", "threads", cxxopts::value<int>()->default_value("1"))(
        "o,out", "write float32 logits to this .npy file", cxxopts::value<std::string>())("h,help", "this help");
    auto args = opts.parse(argc, argv);
    if (args.count("help")) {
        std::printf("%s\n", opts.help().c_str());
        return 0;
    }
    if (!args.count("model")) throw cxxopts::exceptions::missing_argument("model");
    if (!args.count("ids")) throw cxxopts::exceptions::missing_argument("ids");
    const std::vector<int32_t> ids = parse_ids(args["ids"].as<std::string>(), "ids");
    const std::string mode = args["mode"].as<std::string>();
    if (mode != "prefill" && mode != "decode") throw std::runtime_error("--mode must be prefill or decode, got \"" + mode + "\"");
    const int64_t batch = args["batch"].as<int64_t>();
    if (batch < 1) throw std::runtime_error("--batch must be at least 1");
    const int threads = args["threads"].as<int>();
    if (threads < 1) throw std::runtime_error("--threads must be at least 1");
    const AblationMode ablate_mode = parse_ablation_mode(args["ablate-mode"].as<std::string>());
    const AttentionDType attention_type = parse_attention_dtype(args["attention-type"].as<std::string>());
    if (args.count("mean-ids") && args.count("mean-file"))
        throw std::runtime_error("give --mean-ids or --mean-file, not both");

    auto model = Model::load(args["model"].as<std::string>());
    const Config& c = model->config();
    MultiHooks hooks;
    std::unique_ptr<HeadAblation> ablation;
    if (args.count("ablate")) {
        const auto heads = parse_head_list(args["ablate"].as<std::string>(), c.n_layer, c.n_head, "--ablate");
        std::vector<float> means;
        if (ablate_mode == AblationMode::Mean) {
            HeadsText ref;
            if (args.count("mean-file")) ref = load_heads_text_file(*model, args["mean-file"].as<std::string>());
            else ref.ids = args.count("mean-ids") ? parse_ids(args["mean-ids"].as<std::string>(), "mean-ids") : ids;
            means = mean_head_outputs(*model, split_windows(ref.ids, c.n_ctx, ref.bos), threads);
        }
        ablation = std::make_unique<HeadAblation>(c, ablate_mode, std::move(means));
        ablation->set_heads(heads);
        hooks.add(ablation.get());
        std::fprintf(stderr, "ablating %zu head(s), %s mode\n", heads.size(), ablation_mode_name(ablate_mode));
    }
    std::unique_ptr<AttentionWriter> attention;
    if (args.count("attention")) {
        attention = std::make_unique<AttentionWriter>(args["attention"].as<std::string>(), c, attention_type);
        hooks.add(attention.get());
    }

    const int64_t V = c.n_vocab, n = int64_t(ids.size());
    TransformerOptions to;
    to.n_threads = threads;
    to.n_batch = mode == "decode" ? 1 : batch;
    to.n_ctx = std::min<int64_t>(c.n_ctx, std::max<int64_t>(n, 1));
    Transformer tf(*model, to);
    if (!hooks.empty()) tf.set_hooks(&hooks);
    const bool all = args.count("all") > 0;
    std::vector<float> out(size_t(all ? n * V : V));
    if (mode == "decode") {
        for (int64_t i = 0; i < n; ++i) {
            const float* l = tf.forward(&ids[size_t(i)], 1);
            if (all || i == n - 1) std::copy(l, l + V, out.begin() + (all ? i * V : 0));
        }
    } else {
        const float* l = tf.forward(ids.data(), n, all);
        std::copy(l, l + out.size(), out.begin());
    }
    if (attention) attention->finish(ids);
    const float* last = out.data() + (all ? (n - 1) * V : 0);
    const int64_t best = std::max_element(last, last + V) - last;
    std::printf("positions %lld, vocab %lld, argmax of last position %lld (logit %.6f)\n", (long long)n, (long long)V,
                (long long)best, last[best]);
    if (args.count("out")) {
        if (all) write_npy_f32(args["out"].as<std::string>(), out.data(), {n, V});
        else write_npy_f32(args["out"].as<std::string>(), out.data(), {V});
    }
    return 0;
}

}  // namespace minigpt::cli
