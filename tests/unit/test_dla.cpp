// Direct logit attribution: the components must add up to the model's own
// logit (the forward pass's, computed by other code: the final LayerNorm
// kernel and the LM head GEMM), for every weight type, tied and untied heads,
// a contrast pair, an earlier position and a prefill split into batches; and
// each head's contribution must equal the definition computed the long way
// (its write vector z_h · W_O[h] built explicitly, centred, divided by the
// LayerNorm scale, dotted with w_f ⊙ U_t). The comparison with a float64
// reference is in tests/e2e/test_heads_dla.py.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "analysis/dla.h"
#include "runtime/model.h"
#include "runtime/transformer.h"
#include "tiny_model.h"

using namespace minigpt;
using namespace minigpt::test;

namespace {

const TinyShape kShape{};  // 2 layers, 4 heads, n_embd 32, vocab 96

std::vector<int32_t> some_ids(int64_t n, uint32_t seed) { return random_ids(n, kShape.n_vocab, seed); }

// Runs ids with a capture attached; returns the last position's logits.
std::vector<float> run(const Model& m, const std::vector<int32_t>& ids, DlaCapture& cap, int64_t batch = 512) {
    TransformerOptions o;
    o.n_batch = batch;
    Transformer t(m, o);
    t.set_hooks(&cap);
    const float* l = t.forward(ids.data(), int64_t(ids.size()));
    return std::vector<float>(l, l + m.config().n_vocab);
}

double relative(double got, double want) { return std::fabs(got - want) / std::max(1.0, std::fabs(want)); }

}  // namespace

TEST_CASE("dla: components sum to the model's logit for f32, f16, q8_0, tied and untied LM heads") {
    for (DType type : {DType::F32, DType::F16, DType::Q8_0})
        for (bool untied : {true, false}) {
            TempPath path("dla_sum.gguf");
            TinyModelData data;
            build_tiny_gpt2(data, kShape, type, 7, untied);
            data.writer.write(path.path);
            auto model = Model::load(path.path);
            const Config& c = model->config();
            const auto ids = some_ids(20, 3);
            DlaCapture cap(c);
            const auto logits = run(*model, ids, cap);
            double worst = 0;
            for (int32_t t : {0, 5, 42, 95}) {
                const DlaResult r = direct_logit_attribution(*model, cap, ids.back(), DlaTarget{t, -1});
                CHECK(r.pos == 19);
                worst = std::max(worst, relative(r.total(), logits[size_t(t)]));
            }
            const std::string what = std::string(dtype_name(type)) + (untied ? " untied" : " tied");
            MESSAGE(what << ": max relative |Σ components - logit| = " << worst);
            if (type != DType::Q8_0) {
                // Relative to max(1, |logit|). Measured at most 3.8e-7: the f32
                // rounding of the forward pass (the components are summed in
                // double). Bound 1e-5 (the issue asks 1e-4), with room for the
                // AVX2 and scalar kernels' other summation orders.
                CHECK(worst < 1e-5);
            } else {
                // q8_0: every projection quantizes its input (z, the MLP hidden,
                // the final LayerNorm output) to 8 bits per block of 32, as
                // llama.cpp does, while the components use the unquantized
                // activations, so their sum is off the model's logit by that
                // rounding: measured 1.1e-2 and 5.6e-3 relative here. Bound 5e-2.
                CHECK(worst < 5e-2);
            }
        }
}

TEST_CASE("dla: --contrast sums to the logit difference; the two single-token results subtract to it") {
    TempPath path("dla_contrast.gguf");
    auto model = load_tiny_gpt2(path.path, DType::F32, 11);
    const auto ids = some_ids(12, 4);
    DlaCapture cap(model->config());
    const auto logits = run(*model, ids, cap);
    const DlaResult ab = direct_logit_attribution(*model, cap, ids.back(), DlaTarget{10, 20});
    const DlaResult a = direct_logit_attribution(*model, cap, ids.back(), DlaTarget{10, -1});
    const DlaResult b = direct_logit_attribution(*model, cap, ids.back(), DlaTarget{20, -1});
    CHECK(relative(ab.total(), double(logits[10]) - double(logits[20])) < 1e-5);  // as above
    const auto ca = a.components(), cb = b.components(), cab = ab.components();
    REQUIRE(ca.size() == cab.size());
    double worst = 0;
    for (size_t i = 0; i < cab.size(); ++i) worst = std::max(worst, std::fabs(cab[i].second - (ca[i].second - cb[i].second)));
    CHECK(worst < 1e-12);  // linear in U_t: only double rounding separates them
    CHECK(cab.front().first == "embed");
    CHECK(cab[2].first == "L0H0");
    CHECK(cab[6].first == "L0.attn_bias");
    CHECK(cab[7].first == "L0.mlp");
    CHECK(cab.back().first == "ln_final_bias");
    CHECK(cab.size() == size_t(2 + 2 * (4 + 2) + 1));
}

TEST_CASE("dla: each head's contribution equals its write vector read through the frozen LayerNorm") {
    TempPath path("dla_heads.gguf");
    auto model = load_tiny_gpt2(path.path, DType::F16, 13);
    const Config& c = model->config();
    const Weights& w = model->weights();
    const auto ids = some_ids(9, 5);
    DlaCapture cap(c);
    run(*model, ids, cap);
    const int32_t target = 33;
    const DlaResult r = direct_logit_attribution(*model, cap, ids.back(), DlaTarget{target, -1});
    const int64_t d = c.n_embd, hd = c.head_dim();
    const float* x = cap.resid_final();
    double mu = 0, var = 0;
    for (int64_t i = 0; i < d; ++i) mu += x[i];
    mu /= double(d);
    for (int64_t i = 0; i < d; ++i) var += (x[i] - mu) * (x[i] - mu);
    const double sigma = std::sqrt(var / double(d) + double(c.ln_eps));
    CHECK(std::fabs(r.ln_scale - sigma) < 1e-12);
    std::vector<float> u(static_cast<size_t>(d)), wo(static_cast<size_t>(d * d));
    matrix_row(u.data(), w.output, target);
    double worst = 0, largest = 0;
    for (int64_t l = 0; l < c.n_layer; ++l) {
        for (int64_t o = 0; o < d; ++o) matrix_row(wo.data() + o * d, w.layers[size_t(l)].attn_out, o);
        for (int64_t h = 0; h < c.n_head; ++h) {
            std::vector<double> write(static_cast<size_t>(d), 0.0);  // z_h · W_O[h]
            for (int64_t o = 0; o < d; ++o)
                for (int64_t i = h * hd; i < (h + 1) * hd; ++i) write[size_t(o)] += double(cap.z(l)[i]) * wo[size_t(o * d + i)];
            double m = 0, want = 0;
            for (double v : write) m += v;
            m /= double(d);
            for (int64_t o = 0; o < d; ++o) want += (write[size_t(o)] - m) / sigma * w.output_norm_w.data[o] * u[size_t(o)];
            worst = std::max(worst, std::fabs(r.heads[size_t(l * c.n_head + h)] - want));
            largest = std::max(largest, std::fabs(want));
        }
    }
    MESSAGE("max |head contribution - long way| = " << worst << " (largest contribution " << largest << ")");
    CHECK(largest > 0.01);  // the heads must contribute something for the check to mean anything
    CHECK(worst < 1e-12);   // both in double from the same f32 inputs: rounding order only
}

TEST_CASE("dla: a prefill split into batches captures the same last position; a prefix attributes an earlier one") {
    TempPath path("dla_batches.gguf");
    auto model = load_tiny_gpt2(path.path, DType::F32, 17);
    const auto ids = some_ids(25, 6);
    DlaCapture whole(model->config()), split(model->config());
    run(*model, ids, whole);
    run(*model, ids, split, 7);  // batches of 7, 7, 7, 4
    const DlaResult a = direct_logit_attribution(*model, whole, ids.back(), DlaTarget{3, -1});
    const DlaResult b = direct_logit_attribution(*model, split, ids.back(), DlaTarget{3, -1});
    CHECK(b.pos == 24);
    for (size_t i = 0; i < a.heads.size(); ++i) CHECK(std::fabs(a.heads[i] - b.heads[i]) < 1e-5);

    const std::vector<int32_t> prefix(ids.begin(), ids.begin() + 10);
    DlaCapture early(model->config());
    const auto logits = run(*model, prefix, early);
    const DlaResult e = direct_logit_attribution(*model, early, prefix.back(), DlaTarget{3, -1});
    CHECK(e.pos == 9);
    CHECK(relative(e.total(), logits[3]) < 1e-5);
}

TEST_CASE("dla: top_heads orders by |contribution|; bad token ids are refused") {
    DlaResult r;
    r.n_layer = 1;
    r.n_head = 4;
    r.heads = {0.5, -2.0, 1.0, -0.5};
    CHECK(r.top_heads(3) == std::vector<int64_t>{1, 2, 0});
    CHECK(r.top_heads(10).size() == 4);
    TempPath path("dla_bad.gguf");
    auto model = load_tiny_gpt2(path.path, DType::F32, 19);
    DlaCapture cap(model->config());
    CHECK_THROWS_WITH(direct_logit_attribution(*model, cap, 1, DlaTarget{1, -1}), doctest::Contains("no forward pass"));
    run(*model, some_ids(4, 1), cap);
    CHECK_THROWS_WITH(direct_logit_attribution(*model, cap, 1, DlaTarget{96, -1}), doctest::Contains("outside the vocabulary"));
    CHECK_THROWS_WITH(direct_logit_attribution(*model, cap, 1, DlaTarget{1, 200}), doctest::Contains("outside the vocabulary"));
}
