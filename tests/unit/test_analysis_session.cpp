// AnalysisSession: the four calls a decoding loop makes for --ablate,
// --attention and --trace, driven like `generate` drives them; and the shared
// command-line flags that fill its options.
#include <doctest/doctest.h>

#include <algorithm>
#include <fstream>
#include <unistd.h>

#include "analysis/analysis_session.h"
#include "cli/heads_flags.h"
#include "runtime/model.h"
#include "fake_tokenizer.h"
#include "tiny_model.h"
#include "runtime/transformer.h"

using namespace minigpt;
using namespace minigpt::test;

namespace {

struct DigitsTokenizer : FakeTokenizer {  // id i <-> "<i>"; text encodes to its bytes mod 96
    DigitsTokenizer() { prefix = "<", suffix = ">"; }
};

// Greedy decoding of n tokens as generate does it; returns every id.
std::vector<int32_t> decode(Transformer& tf, AnalysisSession* analysis, std::vector<int32_t> ids, int n,
                            std::vector<float>* last_logits = nullptr) {
    const int64_t V = tf.config().n_vocab;
    if (analysis) analysis->begin(tf, ids);
    const float* logits = tf.forward(ids.data(), int64_t(ids.size()));
    for (int i = 0; i < n; ++i) {
        const int32_t next = int32_t(std::max_element(logits, logits + V) - logits);
        if (analysis) analysis->step(tf.pos(), logits, next);
        ids.push_back(next);
        if (i + 1 < n) logits = tf.forward(&next, 1);
    }
    if (last_logits) last_logits->assign(logits, logits + V);
    if (analysis) analysis->finish(ids);
    return ids;
}

int count_lines(const std::string& path) {
    std::ifstream f(path);
    int n = 0;
    for (std::string line; std::getline(f, line);) ++n;
    return n;
}

}  // namespace

TEST_CASE("analysis session: ablation, attention export and trace together, as generate drives them") {
    TempPath mp("session_model.gguf");
    auto model = load_tiny_gpt2(mp.path, DType::F32, 31);
    DigitsTokenizer tok;
    TempPath attn("session_attn.bin"), trace("session_trace.jsonl"), mean_text("session_mean.txt");
    {
        std::ofstream f(mean_text.path);
        f << "a reference text for the mean head outputs";
    }
    AnalysisOptions o;
    o.ablation = {"0.1,1.*", AblationMode::Mean, mean_text.path};
    o.attention_path = attn.path;
    o.attention_type = AttentionDType::F32;
    o.trace_path = trace.path;
    o.trace.logit_lens = true;
    const std::vector<int32_t> prompt = {5, 9, 40, 41, 7};

    std::vector<float> got, want;
    {
        AnalysisSession session(*model, tok, o);
        Transformer tf(*model, TransformerOptions{});
        const auto ids = decode(tf, &session, prompt, 6, &got);
        CHECK(ids.size() == 11);
        CHECK(session.ablated_heads().size() == 5);
        const AttentionFile a = AttentionFile::read(attn.path);
        CHECK(a.n_tokens() == 10);  // the last sampled token was never run
        CHECK(a.ids() == std::vector<int32_t>(ids.begin(), ids.begin() + 10));
        CHECK(count_lines(trace.path) == 1 + 6);
    }
    // The same ablation by hand: means over the reference text, heads 0.1 and layer 1.
    {
        const std::string text = "a reference text for the mean head outputs";
        HeadAblation ablation(model->config(), AblationMode::Mean,
                              mean_head_outputs(*model, {tok.encode(text, false)}));
        ablation.set_heads({{0, 1}, {1, 0}, {1, 1}, {1, 2}, {1, 3}});
        Transformer tf(*model, TransformerOptions{});
        tf.set_hooks(&ablation);
        decode(tf, nullptr, prompt, 6, &want);
    }
    float diff = 0;
    for (size_t i = 0; i < got.size(); ++i) diff = std::max(diff, std::fabs(got[i] - want[i]));
    MESSAGE("session vs hand-built mean ablation: max |logit diff| = " << diff);
    CHECK(diff == 0.f);
}

TEST_CASE("analysis session: nothing requested leaves the decoding path and the disk untouched") {
    TempPath mp("session_model2.gguf");
    auto model = load_tiny_gpt2(mp.path, DType::F32, 32);
    DigitsTokenizer tok;
    AnalysisOptions none;
    CHECK_FALSE(none.any());
    AnalysisSession session(*model, tok, none);
    std::vector<float> a, b;
    Transformer t1(*model, TransformerOptions{}), t2(*model, TransformerOptions{});
    decode(t1, &session, {1, 2, 3}, 4, &a);
    decode(t2, nullptr, {1, 2, 3}, 4, &b);
    CHECK(a == b);

    AnalysisOptions bad;
    bad.ablation.heads = "0.9";
    CHECK_THROWS_WITH(AnalysisSession(*model, tok, bad), doctest::Contains("--ablate: \"0.9\""));
    bad.ablation.heads = "";
    bad.ablation.mean_file = "x.txt";
    CHECK_THROWS_WITH(AnalysisSession(*model, tok, bad), doctest::Contains("--mean-file needs --ablate"));
}

TEST_CASE("analysis flags: generate's and perplexity's --ablate/--attention/--trace options") {
    cli::Options opts("minigpt generate", "");
    cli::add_analysis_options(opts);
    std::vector<std::string> words = {"minigpt generate", "--ablate", "0.1,2.*", "--ablate-mode", "mean",
                                      "--attention", "a.bin", "--attention-type", "f32", "--trace", "t.jsonl",
                                      "--logit-lens", "--trace-top-k", "3"};
    std::vector<char*> argv;
    for (auto& w : words) argv.push_back(w.data());
    const auto args = opts.parse(int(argv.size()), argv.data());
    const AnalysisOptions a = cli::analysis_options(args);
    CHECK(a.ablation.heads == "0.1,2.*");
    CHECK(a.ablation.mode == AblationMode::Mean);
    CHECK(a.attention_path == "a.bin");
    CHECK(a.attention_type == AttentionDType::F32);
    CHECK(a.trace_path == "t.jsonl");
    CHECK(a.trace.logit_lens);
    CHECK(a.trace.top_k == 3);
    CHECK(a.trace.lens_top_k == 5);
    const std::string help = opts.help({"Attention heads"});
    CHECK(help.find("head_mask") != std::string::npos);

    cli::Options ppl("minigpt perplexity", "");
    cli::add_analysis_options(ppl, /*with_trace=*/false);
    std::vector<std::string> w2 = {"minigpt perplexity", "--logit-lens"};
    std::vector<char*> a2;
    for (auto& w : w2) a2.push_back(w.data());
    CHECK_THROWS(ppl.parse(int(a2.size()), a2.data()));  // not an option of perplexity
    cli::Options gen("minigpt generate", "");
    cli::add_analysis_options(gen);
    const auto lens_only = gen.parse(int(a2.size()), a2.data());
    CHECK_THROWS_WITH(cli::analysis_options(lens_only), doctest::Contains("--logit-lens needs --trace"));
}
