// Composition and copying scores on hand-built weights whose scores are known in
// closed form (projectors: |P|_F = sqrt(rank)), plus the token sample. The float64
// numpy reference on random models is tests/e2e/test_heads_circuits.py.
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

#include "analysis/composition.h"
#include "tiny_model.h"

using namespace minigpt;

namespace {

// d = 8, 2 layers of 2 heads (d_head 4), vocabulary 16, f32, built by
// build_tiny_gpt2 and then overwritten in place: unit LayerNorm weights and
// attention matrices set from e[i] (unit vectors), so that with top = span(e0..e3),
// bottom = span(e4..e7) and P = the projector on top:
//   L0H0  W_V = W_O^T = [I4; 0]       OV = P           (copies: W_E P W_E^T is PSD)
//   L0H1  W_V as L0H0, W_O = -[I4 0]  OV = -P          (suppresses)
//   L1H0  W_Q = [I4; 0], W_K = [0; I4]  QK maps top to bottom: Q-composition with L0H0
//         = |P QK| / (|P| |QK|) = 2 / (2 * 2) = 1/2, K-composition |P QK^T| = 0
//   L1H1  W_Q = W_K = W_V = [I4; 0] (QK = P), W_O = 0: writes nothing (OV = 0)
constexpr int64_t kD = 8, kDh = 4, kV = 16;

struct HandModel {
    test::TempPath file{"composition_hand.gguf"};
    test::TinyModelData m;
    HandModel() {
        test::TinyShape s;
        s.n_vocab = kV;
        s.n_embd = kD;
        s.n_head = 2;
        s.n_ff = 16;
        test::build_tiny_gpt2(m, s, DType::F32, 3, /*with_output=*/false);  // tied: W_U = W_E^T
        // Buffers in build_tiny_gpt2's order: token_embd, position_embd, 12 per layer, output_norm w/b.
        for (int64_t l = 0; l < 2; ++l) {
            fill(2 + 12 * l, 1.f);  // attn_norm.weight
            zero(4 + 12 * l);       // attn_qkv.weight
            zero(6 + 12 * l);       // attn_output.weight
        }
        fill(2 + 12 * 2, 1.f);  // output_norm.weight
        for (int64_t a = 0; a < kDh; ++a) {
            // attn_qkv row r = output r (q | k | v), column = input; attn_output row = output.
            qkv(0, 2 * kD + 0 * kDh + a, a) = 1;  // L0H0 W_V: input a -> value a
            out(0, a, 0 * kDh + a) = 1;           // L0H0 W_O: value a -> output a
            qkv(0, 2 * kD + 1 * kDh + a, a) = 1;  // L0H1 W_V
            out(0, a, 1 * kDh + a) = -1;          // L0H1 W_O = -[I4 0]
            qkv(1, 0 * kDh + a, a) = 1;           // L1H0 W_Q reads top
            qkv(1, kD + 0 * kDh + a, kDh + a) = 1;  // L1H0 W_K reads bottom
            qkv(1, 1 * kDh + a, a) = 1;           // L1H1 W_Q, W_K, W_V read top; W_O stays 0
            qkv(1, kD + 1 * kDh + a, a) = 1;
            qkv(1, 2 * kD + 1 * kDh + a, a) = 1;
        }
        m.writer.write(file.path);
    }
    float* buffer(int64_t i) { return reinterpret_cast<float*>(m.buffers[size_t(i)].data()); }
    void fill(int64_t i, float v) {
        for (size_t k = 0; k < m.buffers[size_t(i)].size() / 4; ++k) buffer(i)[k] = v;
    }
    void zero(int64_t i) { fill(i, 0.f); }
    float& qkv(int64_t l, int64_t row, int64_t col) { return buffer(4 + 12 * l)[row * kD + col]; }
    float& out(int64_t l, int64_t row, int64_t col) { return buffer(6 + 12 * l)[row * kD + col]; }
};

double at(const std::vector<double>& m, int64_t src, int64_t dst) { return m[size_t(src * 4 + dst)]; }

}  // namespace

TEST_CASE("copy_token_sample: N ids floor(i * V / N), every id for 0 or N >= V") {
    CHECK(copy_token_sample(10, 4) == std::vector<int32_t>{0, 2, 5, 7});
    CHECK(copy_token_sample(5, 0) == std::vector<int32_t>{0, 1, 2, 3, 4});
    CHECK(copy_token_sample(3, 7) == std::vector<int32_t>{0, 1, 2});
    CHECK(copy_token_sample(50257, 1) == std::vector<int32_t>{0});
}

TEST_CASE("composition scores of hand-built projector heads equal their closed forms") {
    HandModel hm;
    const auto model = Model::load(hm.file.path);
    CircuitOptions opt;
    opt.center = false;  // e_i are not centred: keep the weights exactly as built
    const CircuitScores s = composition_scores(*model, opt);
    REQUIRE(s.q.size() == 16);
    // Measured differences are rounding only (~1e-8: the pair products run in float).
    const double tol = 1e-6;
    CHECK(at(s.q, 0, 2) == doctest::Approx(0.5).epsilon(tol));  // |P QK| / (|P| |QK|) = 2 / (2 * 2)
    CHECK(std::fabs(at(s.k, 0, 2)) < tol);                        // P QK^T = 0
    CHECK(std::fabs(at(s.v, 0, 2)) < tol);                        // L1H0's W_V is 0
    CHECK(at(s.q, 1, 2) == doctest::Approx(0.5).epsilon(tol));  // -P: the same norms
    // L1H1 reads top with QK = P: Q and K are |P P| / (|P| |P|) = 2 / 4 from L0H0 and L0H1;
    // its OV is 0 (W_O = 0), so V-composition has a zero denominator and is reported as 0.
    for (const std::vector<double>* kind : {&s.q, &s.k}) {
        CHECK(at(*kind, 0, 3) == doctest::Approx(0.5).epsilon(tol));
        CHECK(at(*kind, 1, 3) == doctest::Approx(0.5).epsilon(tol));
    }
    CHECK(at(s.v, 0, 3) == 0.0);
    CHECK(at(s.v, 1, 3) == 0.0);
    for (const std::vector<double>* kind : {&s.q, &s.k, &s.v}) {
        for (int64_t a = 0; a < 4; ++a)  // same layer or later source: not scored
            for (int64_t b = 0; b < 4; ++b)
                if (a / 2 >= b / 2) CHECK(at(*kind, a, b) == 0.0);
    }
    CHECK(s.ov_norm[0] == doctest::Approx(2.0));  // |P|_F = sqrt(4)
    CHECK(s.ov_norm[3] == 0.0);                   // L1H1 writes nothing
    CHECK(s.qk_norm[2] == doctest::Approx(2.0));
    // Copying: W_E P W_E^T is positive semi-definite, W_E (-P) W_E^T negative.
    CHECK(s.copy[0] == doctest::Approx(1.0).epsilon(1e-9));
    CHECK(s.copy[1] == doctest::Approx(-1.0).epsilon(1e-9));
    CHECK(s.copy[3] == 0.0);  // no eigenvalues but zeros: 0 / 0 is reported as 0
    CHECK(s.copy_token_count == kV);
}

TEST_CASE("a head that writes nothing scores 0 as a source, centred or not") {
    HandModel hm;
    // L0H0 stops writing (W_O = 0); L0H1 still writes -P.
    for (int64_t a = 0; a < kDh; ++a) hm.out(0, a, a) = 0;
    hm.m.writer.write(hm.file.path);
    const auto model = Model::load(hm.file.path);
    for (bool centred : {false, true}) {
        CircuitOptions opt;
        opt.center = centred;
        opt.copy_tokens = 5;
        const CircuitScores s = composition_scores(*model, opt);
        for (int64_t dst = 2; dst < 4; ++dst) {
            CHECK(at(s.q, 0, dst) == 0.0);
            CHECK(at(s.k, 0, dst) == 0.0);
            CHECK(at(s.v, 0, dst) == 0.0);
        }
        CHECK(s.copy[0] == 0.0);
        CHECK(at(s.q, 1, 3) > 0.1);  // the other head of layer 0 still composes
    }
}
