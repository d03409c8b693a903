// Trace writer: one complete, valid JSON line per step, flushed as it goes;
// log-probabilities, entropies and top-k computed exactly from the raw
// logits; token bytes that are not UTF-8 survive as U+FFFD plus a hex copy;
// the logit lens of the last layer reproduces the model's own prediction.
#include <doctest/doctest.h>

#include <cmath>
#include <fstream>
#include <random>
#include <sstream>

#include <nlohmann/json.hpp>

#include "runtime/model.h"
#include "runtime/multi_hooks.h"
#include "fake_tokenizer.h"
#include "tiny_model.h"
#include "analysis/trace.h"
#include "runtime/transformer.h"
#include "util/json.h"

using namespace minigpt;
using namespace minigpt::test;

namespace {

// Token i is "t<i>", except two awkward ones.
struct AwkwardTokenizer : FakeTokenizer {
    AwkwardTokenizer() {
        bos = eos = 95;
        pieces[7] = "\xe2\x82";            // the first two bytes of "€"
        pieces[8] = "q\"b\\\n\x01<";       // characters JSON must escape
    }
};

std::vector<std::string> read_lines(const std::string& path) {
    std::ifstream f(path);
    std::vector<std::string> lines;
    for (std::string line; std::getline(f, line);) lines.push_back(line);
    return lines;
}

}  // namespace

TEST_CASE("trace: summarize_distribution gives exact log-probability, entropy and tie-ordered top-k") {
    const float logits[4] = {std::log(1.f), std::log(2.f), std::log(3.f), std::log(2.f)};  // p = 1/8, 2/8, 3/8, 2/8
    std::vector<int32_t> scratch;
    const DistributionSummary s = summarize_distribution(logits, 4, 1, 3, scratch);
    const double p[4] = {1.0 / 8, 2.0 / 8, 3.0 / 8, 2.0 / 8};
    double entropy = 0;
    for (double x : p) entropy -= x * std::log(x);
    CHECK(s.logprob == doctest::Approx(std::log(2.0 / 8)).epsilon(1e-6));
    CHECK(s.entropy == doctest::Approx(entropy).epsilon(1e-6));
    REQUIRE(s.top.size() == 3);
    CHECK(s.top[0].id == 2);
    CHECK(s.top[1].id == 1);  // ties (ids 1 and 3): the lower id first
    CHECK(s.top[2].id == 3);
    CHECK(s.top[0].p == doctest::Approx(3.0 / 8).epsilon(1e-6));
    CHECK(summarize_distribution(logits, 4, 0, 10, scratch).top.size() == 4);
}

TEST_CASE("trace: JSONL lines are complete, valid and exact; the last layer's logit lens is the model's prediction") {
    TempPath mp("trace_model.gguf");
    auto model = load_tiny_gpt2(mp.path, DType::F32, 14);
    const int64_t V = model->config().n_vocab, L = model->config().n_layer;
    AwkwardTokenizer tok;
    TempPath out("trace.jsonl");
    TraceOptions opt;
    opt.top_k = 5;
    opt.logit_lens = true;
    opt.lens_top_k = 3;
    TraceWriter trace(out.path, *model, tok, opt);
    REQUIRE(trace.hooks() != nullptr);
    MultiHooks hooks;
    hooks.add(trace.hooks());
    Transformer t(*model, TransformerOptions{});
    t.set_hooks(&hooks);

    std::vector<int32_t> seq = {3, 7, 8, 11, 2};
    trace.begin(seq, "attn.bin");
    const float* logits = t.forward(seq.data(), int64_t(seq.size()));
    std::vector<std::vector<float>> step_logits;
    for (int step = 0; step < 4; ++step) {
        // Not greedy: choose an arbitrary token (7 and 8 included) to test the texts too.
        const int32_t chosen = step == 0 ? 7 : (step == 1 ? 8 : int32_t(step * 13));
        step_logits.emplace_back(logits, logits + V);
        trace.step(t.pos(), logits, chosen);
        if (step == 1) CHECK(read_lines(out.path).size() == 3);  // flushed: readable while running
        seq.push_back(chosen);
        logits = t.forward(&chosen, 1);
    }
    trace.close();

    const auto lines = read_lines(out.path);
    REQUIRE(lines.size() == 5);
    const Json head = json_parse(lines[0], "trace:1");
    CHECK(head.at("type").get<std::string>() == "prompt");
    CHECK(head.at("attention").get<std::string>() == "attn.bin");
    CHECK(head.at("n_layer").get<int64_t>() == L);
    const auto& tokens = head.at("tokens");
    REQUIRE(tokens.size() == 5);
    CHECK(tokens[1].at("text").get<std::string>() == "\xef\xbf\xbd");  // a truncated 3-byte sequence: one U+FFFD
    CHECK(tokens[1].at("hex").get<std::string>() == "e282");
    CHECK(tokens[2].at("text").get<std::string>() == "q\"b\\\n\x01<");
    CHECK_FALSE(tokens[2].contains("hex"));
    CHECK(tokens[3].at("text").get<std::string>() == "t11");

    float worst_lp = 0, worst_lens = 0;
    for (int step = 0; step < 4; ++step) {
        const Json s = json_parse(lines[size_t(1 + step)], "trace:" + std::to_string(step + 2));
        CHECK(s.at("type").get<std::string>() == "step");
        CHECK(s.at("pos").get<int64_t>() == 5 + step);
        const int32_t id = int32_t(s.at("id").get<int64_t>());
        CHECK(id == seq[size_t(5 + step)]);
        // Independent log-softmax in double.
        const std::vector<float>& l = step_logits[size_t(step)];
        double mx = l[0];
        for (float x : l) mx = std::max(mx, double(x));
        double z = 0;
        for (float x : l) z += std::exp(double(x) - mx);
        const double lp = double(l[size_t(id)]) - mx - std::log(z);
        worst_lp = std::max(worst_lp, float(std::fabs(lp - s.at("logprob").get<double>())));
        const auto& top = s.at("top");
        REQUIRE(top.size() == 5);
        for (size_t k = 1; k < top.size(); ++k)
            CHECK(top[k].at("p").get<double>() <= top[k - 1].at("p").get<double>());
        const auto& lens = s.at("lens");
        REQUIRE(int64_t(lens.size()) == L);
        const auto& last = lens[size_t(L - 1)].at("top");
        REQUIRE(last.size() == 3);
        for (size_t k = 0; k < 3; ++k) {
            CHECK(last[k].at("id").get<int64_t>() == top[k].at("id").get<int64_t>());
            worst_lens = std::max(worst_lens, float(std::fabs(last[k].at("p").get<double>() -
                                                               top[k].at("p").get<double>())));
        }
    }
    MESSAGE("max |logprob - reference| = " << worst_lp << "; max |lens(last layer) p - model p| = " << worst_lens);
    CHECK(worst_lp < 1e-5f);
    CHECK(worst_lens < 1e-5f);
}

TEST_CASE("trace: a logit lens out of step with the model is refused; an unwritable path is named") {
    TempPath mp("trace_model2.gguf");
    auto model = load_tiny_gpt2(mp.path, DType::F32, 15);
    AwkwardTokenizer tok;
    TempPath out("trace2.jsonl");
    TraceOptions opt;
    opt.logit_lens = true;
    TraceWriter trace(out.path, *model, tok, opt);
    std::vector<float> logits(96, 0.f);
    CHECK_THROWS_WITH(trace.step(3, logits.data(), 1), doctest::Contains("needs position 2"));
    CHECK_THROWS_WITH(TraceWriter("/nonexistent-dir/x.jsonl", *model, tok), doctest::Contains("/nonexistent-dir/x.jsonl"));
    TraceWriter plain(out.path, *model, tok);
    CHECK(plain.hooks() == nullptr);
}
