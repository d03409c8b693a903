// minigpt heads group-kv: a multi-head GPT-2 GGUF turned into one with grouped
// key/value heads (GQA; --kv-heads 1 is multi-query attention) by mean-pooling
// the key and value projections of each group, as Ainslie et al. 2023 do before
// up-training (src/analysis/group_kv.h). With -f it measures what the change
// costs: perplexity (llama-perplexity's protocol) and decode speed, before and after.
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "analysis/group_kv.h"
#include "cli/args.h"
#include "cli/commands.h"
#include "eval/perplexity.h"
#include "runtime/model.h"
#include "runtime/transformer.h"
#include "tokenizer/tokenizer.h"

namespace minigpt::cli {

namespace {

struct Measured {
    double ppl = 0, ppl_err = 0, decode_tps = 0;
    uint64_t kv_bytes = 0;
};

// Perplexity of `text` over windows of n_ctx tokens, then 64 decoding steps after
// an 8-token prompt (tokens/s, median-free single run: a quick before/after figure,
// `minigpt bench` is the place for careful timing).
Measured measure(const std::string& path, const std::string& text, int64_t n_ctx, int threads) {
    auto model = Model::load(path);
    auto tok = make_tokenizer(model->tokenizer_spec());
    std::vector<int32_t> ids;
    if (tok->add_bos()) ids.push_back(tok->bos_id());
    const std::vector<int32_t> body = tok->encode(text);
    ids.insert(ids.end(), body.begin(), body.end());
    const int64_t ctx = n_ctx > 0 ? n_ctx : std::min<int64_t>(512, model->config().n_ctx);
    Transformer tf(*model, TransformerOptions{ctx, 512, threads});
    PerplexityOptions po;
    po.n_vocab = model->config().n_vocab;
    po.bos_first = tok->add_bos();
    po.bos_id = tok->bos_id();
    const PerplexityResult r = compute_perplexity(ids, llama_chunks(int64_t(ids.size()), ctx), po, transformer_evaluator(tf));
    Measured m;
    m.ppl = r.ppl();
    m.ppl_err = r.ppl_error();
    m.kv_bytes = tf.kv_cache_bytes();
    tf.reset();
    tf.forward(ids.data(), std::min<int64_t>(8, int64_t(ids.size())));
    const int steps = int(std::min<int64_t>(64, ctx - 8));
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < steps; ++i) tf.forward(&ids[size_t(i % int64_t(ids.size()))], 1);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    m.decode_tps = steps / s;
    return m;
}

}  // namespace

int heads_group_kv(int argc, char** argv) {
    Options opts = command_options(
        argv[0],
        "Convert a GPT-2 GGUF to grouped key/value heads: the key and value projections (weights and biases) of "
        "each group of consecutive key/value heads are replaced by their mean (Ainslie et al. 2023, GQA), so that "
        "G key/value heads remain, each shared by n_head/G query heads. G = 1 is multi-query attention; G = the "
        "file's key/value head count gives back the same tensors. The output sets gpt2.attention.head_count_kv and "
        "loads in llama.cpp. With -f, perplexity (llama-perplexity's protocol) and decode speed before and after.");
    opts.add_options()("input", "input GGUF", text_value())(
        "output", "output GGUF", text_value())(
        "kv-heads", "key/value heads to keep (divides the input's)", number_value(), "G")(
        "method", "how each group is pooled: mean (the only one, Ainslie et al.'s)",
        text_value("mean"), "M");
    add_file_option(opts, "text to measure perplexity and decode speed on, before and after");
    add_ctx_option(opts, "tokens per perplexity window; 0 = 512 or the model's context if smaller");
    add_threads_option(opts);
    opts.parse_positional({"input", "output"});
    opts.positional_help("IN.gguf OUT.gguf");
    ParsedFlags args;
    if (!parse_flags(opts, argc, argv, args)) return 0;
    const std::string in = required_option(args, "input", "IN.gguf");
    const std::string out = required_option(args, "output", "OUT.gguf");
    if (in == out) usage_error("OUT.gguf must differ from IN.gguf (" + in + ")");
    const int64_t g = int_option(args, "kv-heads", between(1, 1 << 20));
    if (args.value("method") != "mean")
        usage_error("--method: \"" + args.value("method") + "\" is not known (mean)");
    const int threads = threads_option(args);
    const int64_t ctx = int_option(args, "ctx-size", at_least(0));

    const GroupKvSummary s = group_kv_file(in, out, g);
    std::printf("%s: %lld query heads, %lld key/value heads -> %s: %lld key/value heads (%lld query heads each)\n",
                in.c_str(), (long long)s.n_head, (long long)s.kv_heads_in, out.c_str(), (long long)s.kv_heads_out,
                (long long)(s.n_head / s.kv_heads_out));
    std::printf("KV cache per token (f32, %lld layers): %llu -> %llu bytes\n", (long long)s.n_layer,
                (unsigned long long)s.kv_bytes_per_token_in, (unsigned long long)s.kv_bytes_per_token_out);
    if (has(args, "file")) {
        const std::string text = read_input(args.value("file"), "-f/--file");
        const Measured before = measure(in, text, ctx, threads), after = measure(out, text, ctx, threads);
        std::printf("%-8s %12s %10s %14s %14s\n", "", "PPL", "+/-", "decode tok/s", "KV cache KiB");
        for (const auto& [name, m] : {std::pair<const char*, const Measured&>{"before", before}, {"after", after}})
            std::printf("%-8s %12.4f %10.4f %14.1f %14.1f\n", name, m.ppl, m.ppl_err, m.decode_tps,
                        double(m.kv_bytes) / 1024.0);
    }
    return 0;
}

}  // namespace minigpt::cli
