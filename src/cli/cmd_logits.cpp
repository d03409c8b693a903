// minigpt logits: the raw next-token logits for a sequence of ids, for checking
// the forward pass against other engines (the tests compare them with a float64
// numpy reference). Three ways to run the same sequence:
//   prefill  all ids in batches of --batch tokens (default: one batch)
//   decode   one id at a time through the KV cache
#include <algorithm>
#include <cstdio>
#include <cxxopts.hpp>

#include "cli/args.h"
#include "cli/commands.h"
#include "util/memory_usage.h"
#include "runtime/model.h"
#include "util/npy.h"
#include "runtime/transformer.h"

namespace minigpt::cli {

int cmd_logits(int argc, char** argv) {
    cxxopts::Options opts(argv[0], "Print or save the logits of a sequence of token ids.");
    opts.add_options()("m,model", "GGUF model", cxxopts::value<std::string>())(
        "ids", "token ids, e.g. \"464 2068 7586\"", cxxopts::value<std::string>())(
        "all", "logits of every position, not only the last")(
        "mode", "prefill (batches) or decode (one token at a time)", cxxopts::value<std::string>()->default_value("prefill"))(
        "b,batch", "tokens per batch in prefill mode", cxxopts::value<int64_t>()->default_value("512"))(
        "t,threads", "threads", cxxopts::value<int>()->default_value("1"))(
        "o,out", "write float32 logits to this .npy file", cxxopts::value<std::string>())(
        "mem", "print file size, KV cache size and peak resident memory (weights are mapped, not copied)")(
        "h,help", "this help");
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

    auto model = Model::load(args["model"].as<std::string>());
    const int64_t V = model->config().n_vocab, n = int64_t(ids.size());
    for (int32_t id : ids)
        if (id < 0 || id >= V)
            throw std::runtime_error("--ids: token id " + std::to_string(id) + " is outside the vocabulary (0.." +
                                     std::to_string(V - 1) + ")");
    if (n > model->config().n_ctx)
        throw std::runtime_error("--ids: " + std::to_string(n) + " ids exceed the model's context of " +
                                 std::to_string(model->config().n_ctx) + " positions");
    TransformerOptions to;
    to.n_threads = threads;
    to.n_batch = mode == "decode" ? 1 : batch;
    Transformer tf(*model, to);
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
    const float* last = out.data() + (all ? (n - 1) * V : 0);
    const int64_t best = std::max_element(last, last + V) - last;
    std::printf("positions %lld, vocab %lld, argmax of last position %lld (logit %.6f)\n", (long long)n, (long long)V,
                (long long)best, last[best]);
    if (args.count("mem")) {
        const double mib = 1 << 20;
        std::printf("file %.1f MiB, KV cache %.1f MiB, peak resident %.1f MiB, resident now %.1f MiB\n",
                    double(model->gguf().file_size()) / mib, double(tf.kv_cache_bytes()) / mib,
                    double(peak_resident_bytes()) / mib, double(resident_bytes()) / mib);
    }
    if (args.count("out")) {
        if (all) write_npy_f32(args["out"].as<std::string>(), out.data(), {n, V});
        else write_npy_f32(args["out"].as<std::string>(), out.data(), {V});
    }
    return 0;
}

}  // namespace minigpt::cli

namespace {
minigpt::cli::RegisterCommand reg{"logits", minigpt::cli::cmd_logits,
                                  "print or save raw logits of token ids (to check against other engines)", 70};
}
