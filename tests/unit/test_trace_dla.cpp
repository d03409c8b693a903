// generate --trace --dla: each step line carries the heads whose direct write
// raised or lowered the chosen token's logit most. Decoded token by token
// through the KV cache, the values must equal direct_logit_attribution of a
// separate prefill of the same prefix (another code path for the activations).
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "analysis/dla.h"
#include "analysis/trace.h"
#include "runtime/model.h"
#include "runtime/multi_hooks.h"
#include "runtime/transformer.h"
#include "fake_tokenizer.h"
#include "tiny_model.h"
#include "util/json.h"
#include "util/read_file.h"

using namespace minigpt;
using namespace minigpt::test;

namespace {

// Token i is "t<i>": the trace needs texts, the test model has no tokenizer.
struct IdTokenizer : FakeTokenizer {
    IdTokenizer() { bos = eos = 95; }
};

std::vector<Json> trace_lines(const std::string& path) {
    std::vector<Json> out;
    const std::string text = read_file(path);
    for (size_t at = 0; at < text.size();) {
        const size_t end = text.find('\n', at);
        out.push_back(json_parse(std::string_view(text).substr(at, end - at), path));
        at = end + 1;
    }
    return out;
}

}  // namespace

TEST_CASE("trace --dla: top heads per step equal a prefill's attribution of the chosen token") {
    TempPath model_path("trace_dla.gguf"), trace_path("trace_dla.jsonl");
    auto model = load_tiny_gpt2(model_path.path, DType::F32, 41);
    const Config& c = model->config();
    IdTokenizer tok;
    TraceOptions opt;
    opt.dla = true;
    opt.dla_top_k = 3;
    std::vector<int32_t> ids = {3, 17, 40, 5, 88};
    {
        TraceWriter w(trace_path.path, *model, tok, opt);
        REQUIRE(w.hooks() != nullptr);
        TransformerOptions to;
        Transformer tf(*model, to);
        tf.set_hooks(w.hooks());
        w.begin(ids);
        const float* logits = tf.forward(ids.data(), int64_t(ids.size()));
        for (int step = 0; step < 4; ++step) {
            const int32_t chosen = int32_t((7 * step + 11) % c.n_vocab);  // any token: DLA does not care how it was picked
            w.step(tf.pos(), logits, chosen);
            ids.push_back(chosen);
            logits = tf.forward(&ids.back(), 1);
        }
        w.close();
    }
    const std::vector<Json> lines = trace_lines(trace_path.path);
    REQUIRE(lines.size() == 5);
    double worst = 0;
    for (size_t s = 1; s < lines.size(); ++s) {
        const Json& d = lines[s].at("dla");
        const int64_t pos = lines[s].at("pos").get<int64_t>();
        const int32_t chosen = lines[s].at("id").get<int32_t>();
        const std::vector<int32_t> prefix(ids.begin(), ids.begin() + pos);
        DlaCapture cap(c);
        TransformerOptions to;
        Transformer tf(*model, to);
        tf.set_hooks(&cap);
        const float* logits = tf.forward(prefix.data(), int64_t(prefix.size()));
        const DlaResult want = direct_logit_attribution(*model, cap, prefix.back(), DlaTarget{chosen, -1});
        const std::vector<int64_t> top = want.top_heads(3);
        REQUIRE(d.at("heads").size() == 3);
        CHECK(std::fabs(d.at("logit").get<double>() - logits[chosen]) < 1e-5);
        for (size_t i = 0; i < 3; ++i) {
            const Json& h = d.at("heads")[i];
            CHECK(h.at("layer").get<int64_t>() * c.n_head + h.at("head").get<int64_t>() == top[i]);
            worst = std::max(worst, std::fabs(h.at("value").get<double>() - want.heads[size_t(top[i])]));
        }
    }
    // Measured 4.5e-7: decode (one token through the cache) vs prefill rounding,
    // and 7 significant digits in the file.
    MESSAGE("max |trace dla - prefill dla| = " << worst);
    CHECK(worst < 1e-5);
}

TEST_CASE("trace: no dla member without the option; a step at the wrong position is refused") {
    TempPath model_path("trace_nodla.gguf"), trace_path("trace_nodla.jsonl");
    auto model = load_tiny_gpt2(model_path.path, DType::F32, 43);
    IdTokenizer tok;
    const std::vector<int32_t> ids = {3, 17, 40};
    {
        TraceWriter w(trace_path.path, *model, tok, TraceOptions{});
        CHECK(w.hooks() == nullptr);
        Transformer tf(*model, TransformerOptions{});
        w.begin(ids);
        w.step(3, tf.forward(ids.data(), 3), 9);
        w.close();
    }
    CHECK(trace_lines(trace_path.path)[1].contains("dla") == false);
    TraceOptions opt;
    opt.dla = true;
    TraceWriter w(trace_path.path, *model, tok, opt);
    Transformer tf(*model, TransformerOptions{});
    tf.set_hooks(w.hooks());
    w.begin(ids);
    const float* logits = tf.forward(ids.data(), 3);
    CHECK_THROWS_WITH(w.step(5, logits, 9), doctest::Contains("DLA saw position 2, but step 5 needs position 4"));
}
