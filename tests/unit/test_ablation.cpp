// Head ablation through hook_z checked against weight surgery, a route that
// shares no code with the hooks: zero-ablating head h of layer l is the same
// model as one whose output projection has head h's input columns zeroed, and
// mean-ablating it is the same as zeroing them and adding W_O[:, head] · mean
// to the projection's bias. Also: head-list parsing, MultiHooks fan-out, and
// the mean head outputs.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <random>

#include "analysis/ablation.h"
#include "runtime/model.h"
#include "runtime/multi_hooks.h"
#include "eval/text_windows.h"
#include "fake_tokenizer.h"
#include "tiny_model.h"
#include "runtime/transformer.h"

using namespace minigpt;
using namespace minigpt::test;

namespace {

const TinyShape kShape{};  // 2 layers, 4 heads, n_embd 32 (head_dim 8), vocab 96

std::vector<int32_t> some_ids(int64_t n, uint32_t seed) { return random_ids(n, kShape.n_vocab, seed); }

std::vector<float> run_all_logits(const Model& m, const std::vector<int32_t>& ids, ForwardHooks* hooks, int64_t batch = 512) {
    TransformerOptions o;
    o.n_batch = batch;
    Transformer t(m, o);
    t.set_hooks(hooks);
    const float* l = t.forward(ids.data(), int64_t(ids.size()), true);
    return std::vector<float>(l, l + int64_t(ids.size()) * m.config().n_vocab);
}

float max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
    float m = 0;
    for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::fabs(a[i] - b[i]));
    return m;
}

// The f32 tiny model with `heads` removed by editing the output projection
// (buffers 2 + 12 l + 4 and + 5 hold blk.l.attn_output.weight and .bias).
void write_surgery_model(const std::string& path, const std::vector<HeadRef>& heads, const std::vector<float>* means) {
    TinyModelData m;
    build_tiny_gpt2(m, kShape, DType::F32, 21);
    const int64_t d = kShape.n_embd, hd = d / kShape.n_head;
    for (const HeadRef& h : heads) {
        float* w = reinterpret_cast<float*>(m.buffers[size_t(2 + 12 * h.layer + 4)].data());  // (d out, d in)
        float* b = reinterpret_cast<float*>(m.buffers[size_t(2 + 12 * h.layer + 5)].data());
        for (int64_t out = 0; out < d; ++out)
            for (int64_t c = h.head * hd; c < (h.head + 1) * hd; ++c) {
                if (means) b[out] += w[out * d + c] * (*means)[size_t(h.layer * d + c)];
                w[out * d + c] = 0.f;
            }
    }
    m.writer.write(path);
}

}  // namespace

TEST_CASE("ablation: parse_head_list reads L.H and L.*, drops duplicates, names the bad item") {
    const auto heads = parse_head_list("0.1, 1.*,0.1,1.2", 2, 4);
    const std::vector<HeadRef> expected = {{0, 1}, {1, 0}, {1, 1}, {1, 2}, {1, 3}};
    CHECK(heads == expected);
    CHECK(head_label(HeadRef{3, 11}) == "L3H11");
    CHECK(head_arg(HeadRef{3, 11}) == "3.11");
    CHECK_THROWS_WITH(parse_head_list("0.x", 2, 4), doctest::Contains("--ablate: \"0.x\" is not a head"));
    CHECK_THROWS_WITH(parse_head_list("1", 2, 4), doctest::Contains("\"1\" is not a head"));
    CHECK_THROWS_WITH(parse_head_list(".1", 2, 4), doctest::Contains("\".1\" is not a head"));
    CHECK_THROWS_WITH(parse_head_list("2.0", 2, 4), doctest::Contains("\"2.0\": the model has 2 layers (0..1)"));
    CHECK_THROWS_WITH(parse_head_list("0.4", 2, 4), doctest::Contains("\"0.4\": the model has 4 heads per layer (0..3)"));
    CHECK_THROWS_WITH(parse_head_list(" , ", 2, 4, "--prune"), doctest::Contains("--prune: no heads given"));
    CHECK_THROWS_WITH(parse_ablation_mode("avg"), doctest::Contains("zero or mean"));
}

TEST_CASE("ablation: zeroing heads through hook_z equals zeroing their columns of the output projection") {
    TempPath base_path("abl_base.gguf");
    write_surgery_model(base_path.path, {}, nullptr);
    auto base = Model::load(base_path.path);
    const auto ids = some_ids(24, 5);
    const std::vector<float> plain = run_all_logits(*base, ids, nullptr);
    const std::vector<std::vector<HeadRef>> cases = {{{0, 2}}, {{1, 0}, {1, 1}, {1, 2}, {1, 3}}, {{0, 0}, {1, 3}}};
    for (const auto& heads : cases) {
        TempPath cut_path("abl_cut.gguf");
        write_surgery_model(cut_path.path, heads, nullptr);
        auto cut = Model::load(cut_path.path);
        const std::vector<float> surgery = run_all_logits(*cut, ids, nullptr);
        HeadAblation ablation(base->config(), AblationMode::Zero);
        ablation.set_heads(heads);
        for (int64_t batch : {512, 5}) {
            const std::vector<float> hooked = run_all_logits(*base, ids, &ablation, batch);
            const float diff = max_abs_diff(hooked, surgery), effect = max_abs_diff(hooked, plain);
            MESSAGE(heads.size() << " head(s), batch " << batch << ": max |hook - surgery| = " << diff
                                 << " (tolerance 1e-5); effect of the ablation " << effect);
            CHECK(diff <= 1e-5f);
            CHECK(effect > 1e-2f);  // the ablation did something
        }
    }
}

TEST_CASE("ablation: mean ablation equals surgery with W_O[:, head] · mean folded into the bias") {
    TempPath base_path("abl_mbase.gguf");
    write_surgery_model(base_path.path, {}, nullptr);
    auto base = Model::load(base_path.path);
    const Config& c = base->config();
    const auto ref_ids = some_ids(40, 6), ids = some_ids(20, 7);
    const std::vector<float> means = mean_head_outputs(*base, {ref_ids});
    REQUIRE(int64_t(means.size()) == c.n_layer * c.n_embd);
    const std::vector<HeadRef> heads = {{0, 1}, {1, 0}, {1, 3}};
    TempPath cut_path("abl_mcut.gguf");
    write_surgery_model(cut_path.path, heads, &means);
    auto cut = Model::load(cut_path.path);
    HeadAblation ablation(c, AblationMode::Mean, means);
    ablation.set_heads(heads);
    const float diff = max_abs_diff(run_all_logits(*base, ids, &ablation), run_all_logits(*cut, ids, nullptr));
    MESSAGE("mean ablation: max |hook - surgery| = " << diff << " (tolerance 1e-5)");
    CHECK(diff <= 1e-5f);
    CHECK_THROWS_WITH(HeadAblation(c, AblationMode::Mean, {}), doctest::Contains("mean values"));
}

namespace {
struct ZRecorder : ForwardHooks {
    std::vector<std::vector<float>> rows;  // per layer, every row of z seen
    int calls = 0;
    uint32_t wanted() const override { return hook_bit(Hook::Z); }
    void on(const HookView& v) override {
        ++calls;
        if (rows.size() <= size_t(v.layer)) rows.resize(size_t(v.layer) + 1);
        for (int64_t i = 0; i < v.rows; ++i) rows[size_t(v.layer)].insert(rows[size_t(v.layer)].end(), v.row(i), v.row(i) + v.cols);
    }
};
struct PatternCounter : ForwardHooks {
    int calls = 0;
    uint32_t wanted() const override { return hook_bit(Hook::Pattern); }
    void on(const HookView&) override { ++calls; }
};
}  // namespace

TEST_CASE("ablation: mean head outputs are the average of hook_z over every position of every window") {
    TempPath p("abl_means.gguf");
    write_surgery_model(p.path, {}, nullptr);
    auto model = Model::load(p.path);
    const Config& c = model->config();
    const auto ids = some_ids(50, 8);
    const auto windows = split_windows(ids, 16, -1);
    REQUIRE(windows.size() == 4);  // 16 + 16 + 16 + 2
    ZRecorder rec;
    TransformerOptions o;
    o.n_ctx = 16;
    Transformer t(*model, o);
    t.set_hooks(&rec);
    for (const auto& w : windows) {
        t.reset();
        t.forward(w.data(), int64_t(w.size()));
    }
    const std::vector<float> means = mean_head_outputs(*model, windows);
    float worst = 0;
    for (int64_t l = 0; l < c.n_layer; ++l)
        for (int64_t col = 0; col < c.n_embd; ++col) {
            double s = 0;
            for (int64_t r = 0; r < 50; ++r) s += rec.rows[size_t(l)][size_t(r * c.n_embd + col)];
            worst = std::max(worst, float(std::fabs(s / 50 - means[size_t(l * c.n_embd + col)])));
        }
    MESSAGE("max |mean - recorded average| = " << worst);
    CHECK(worst < 1e-6f);
    // split_windows with BOS: each window is BOS + window-1 text tokens.
    const auto with_bos = split_windows(ids, 16, 95);
    CHECK(with_bos.size() == 4);
    CHECK(with_bos[0][0] == 95);
    CHECK(with_bos[0][1] == ids[0]);
    CHECK(with_bos[1][1] == ids[15]);
    CHECK(split_windows(ids, 16, -1, 2).size() == 2);
}

TEST_CASE("MultiHooks: children see only the points they want, in the order added; ablation is seen downstream") {
    TempPath p("abl_multi.gguf");
    write_surgery_model(p.path, {}, nullptr);
    auto model = Model::load(p.path);
    HeadAblation ablation(model->config(), AblationMode::Zero);
    ablation.set_heads({{0, 1}});
    ZRecorder after;
    PatternCounter patterns;
    MultiHooks hooks;
    hooks.add(&ablation);
    hooks.add(nullptr);  // ignored
    hooks.add(&after);
    hooks.add(&patterns);
    CHECK(hooks.wanted() == (hook_bit(Hook::Z) | hook_bit(Hook::Pattern)));
    const auto ids = some_ids(6, 9);
    Transformer t(*model, TransformerOptions{});
    t.set_hooks(&hooks);
    t.forward(ids.data(), 6);
    CHECK(after.calls == 2);        // one hook_z per layer
    CHECK(patterns.calls == 2 * 4);  // one pattern per layer and head
    bool zeroed = true;
    for (int64_t r = 0; r < 6; ++r)
        for (int64_t c = 8; c < 16; ++c) zeroed = zeroed && after.rows[0][size_t(r * 32 + c)] == 0.f;
    CHECK(zeroed);
}

namespace {

struct ByteTokenizer : FakeTokenizer {  // a byte b -> id b % 90; BOS 95 first when asked
    ByteTokenizer() { byte_mod = 90, bos = 95, bos_first = true; }
};

}  // namespace

TEST_CASE("ablation from options: the one builder equals the hook built by hand, for each reference") {
    TempPath p("abl_options.gguf"), text("abl_options_mean.txt");
    write_surgery_model(p.path, {}, nullptr);
    auto model = Model::load(p.path);
    const Config& c = model->config();
    const std::string mean_text = "the text whose mean head outputs mean ablation uses, longer than one window";
    {
        std::ofstream f(text.path);
        f << mean_text;
    }
    const ByteTokenizer tok;
    const auto ids = some_ids(20, 11);
    const auto own = split_windows(some_ids(30, 12), 16, -1);
    const std::vector<HeadRef> heads = {{0, 1}, {1, 0}, {1, 1}, {1, 2}, {1, 3}};
    const auto plain = run_all_logits(*model, ids, nullptr);
    auto by_hand = [&](AblationMode mode, std::vector<float> means) {
        HeadAblation h(c, mode, std::move(means));
        h.set_heads(heads);
        return run_all_logits(*model, ids, &h);
    };

    CHECK(ablation_heads(AblationRequest{}, c).empty());
    CHECK(ablation_from_options(*model, AblationRequest{}, own, 16, 1, &tok) == nullptr);
    CHECK(ablation_heads({"0.1,1.*", AblationMode::Zero, ""}, c) == heads);
    CHECK_THROWS_WITH(ablation_heads({"0.1", AblationMode::Zero, text.path}, c),
                      doctest::Contains("--mean-file needs --ablate with --ablate-mode mean"));
    CHECK_THROWS_WITH(ablation_heads({"", AblationMode::Mean, text.path}, c), doctest::Contains("--mean-file needs"));
    CHECK_THROWS_WITH(ablation_heads({"0.9", AblationMode::Zero, ""}, c), doctest::Contains("--ablate: \"0.9\""));

    // Bit-identical to the hand-built hook: the same means, the same arithmetic.
    const auto zero = ablation_from_options(*model, {"0.1,1.*", AblationMode::Zero, ""}, own, 16, 1, &tok);
    REQUIRE(zero);
    CHECK(zero->heads() == heads);
    CHECK(run_all_logits(*model, ids, zero.get()) == by_hand(AblationMode::Zero, {}));
    const auto mean_own = ablation_from_options(*model, {"0.1,1.*", AblationMode::Mean, ""}, own, 16, 1, &tok);
    CHECK(run_all_logits(*model, ids, mean_own.get()) == by_hand(AblationMode::Mean, mean_head_outputs(*model, own)));
    // --mean-file: the tokenizer's ids, BOS first in each window of 16.
    const auto mean_file = ablation_from_options(*model, {"0.1,1.*", AblationMode::Mean, text.path}, own, 16, 1, &tok);
    const auto file_windows = split_windows(tok.encode(mean_text, false), 16, 95);
    REQUIRE(file_windows.size() == 5);  // 75 bytes in windows of BOS + 15
    const auto want = by_hand(AblationMode::Mean, mean_head_outputs(*model, file_windows));
    CHECK(run_all_logits(*model, ids, mean_file.get()) == want);
    CHECK(want != plain);  // the ablation changes the logits, so the equalities above mean something
    CHECK(want != by_hand(AblationMode::Mean, mean_head_outputs(*model, own)));  // and the reference matters

    CHECK_THROWS_WITH(ablation_from_options(*model, {"0.1", AblationMode::Mean, "/nonexistent/mean.txt"}, own, 16, 1, &tok),
                      doctest::Contains("/nonexistent/mean.txt: cannot read"));
}
