// Perplexity arithmetic on hand-made cases, the two protocols' windows, the
// llama.cpp log-prob file and the KL statistics, and the progress bar's text.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <random>

#include "check_near.h"
#include "eval/kl_divergence.h"
#include "runtime/model.h"
#include "eval/perplexity.h"
#include "util/progress.h"
#include "tiny_model.h"
#include "runtime/transformer.h"

using namespace minigpt;

TEST_CASE("token_nll: -log softmax in double, stable for huge logits") {
    // p = (0.1, 0.2, 0.3, 0.4)
    const float logits[4] = {std::log(1.f), std::log(2.f), std::log(3.f), std::log(4.f)};
    // The logits are logs rounded to float: measured 2.1e-9 and 2.4e-9; bound 2.5e-8.
    CHECK_NEAR(token_nll(logits, 4, 3), -std::log(0.4), 2.5e-8);
    CHECK_NEAR(token_nll(logits, 4, 0), -std::log(0.1), 2.5e-8);
    const float shifted[4] = {1000.f + logits[0], 1000.f + logits[1], 1000.f + logits[2], 1000.f + logits[3]};
    // 1000 + log(k) in float keeps only ~6e-5 of log(k): measured 7.1e-6; bound 7e-5.
    CHECK_NEAR(token_nll(shifted, 4, 3), -std::log(0.4), 7e-5);
    const float uniform[5] = {-7.f, -7.f, -7.f, -7.f, -7.f};
    CHECK_NEAR(token_nll(uniform, 5, 2), std::log(5.0), 1e-15);  // measured 8.5e-17
    CHECK(argmax(logits, 4) == 3);
    CHECK_THROWS_AS(token_nll(logits, 4, 4), std::runtime_error);
}

TEST_CASE("NllStats: PPL = exp(mean NLL), llama.cpp's error") {
    NllStats s;
    for (double v : {1.0, 2.0, 3.0}) s.add(v);
    // double arithmetic on small integers: measured 0, 0 and 1.7e-16; bounds a few ulps.
    CHECK_NEAR(s.mean(), 2.0, 1e-15);
    CHECK_NEAR(s.ppl(), std::exp(2.0), 1e-15);
    // var = mean(x^2) - mean^2 = 14/3 - 4 = 2/3; error = PPL * sqrt(var / (n - 1))
    CHECK_NEAR(s.ppl_error(), std::exp(2.0) * std::sqrt((2.0 / 3.0) / 2.0), 2e-15);
    NllStats one;
    one.add(1.0);
    CHECK(one.ppl_error() == 0.0);
}

TEST_CASE("llama-perplexity chunks: second half scored, 2*n_ctx tokens required") {
    const std::vector<Window> w = llama_chunks(10, 4);
    REQUIRE(w.size() == 2);
    CHECK(w[0].begin == 0);
    CHECK(w[0].end == 4);
    CHECK(w[0].first_target == 3);  // first = 2: logits at 2 score token 3
    CHECK(w[0].first_logit() == 2);
    CHECK(w[0].n_scored() == 1);     // n_ctx - 1 - first
    CHECK(w[1].begin == 4);
    CHECK(w[1].first_target == 7);
    CHECK(llama_chunks(10, 4, 1).size() == 1);
    CHECK(llama_chunks(512 * 5 + 7, 512).size() == 5);
    CHECK(llama_chunks(512 * 5, 512)[4].n_scored() == 255);
    CHECK_THROWS_WITH_AS(llama_chunks(7, 4), doctest::Contains("at least 8 tokens"), std::runtime_error);
}

TEST_CASE("Hugging Face sliding windows: every token after the first scored once") {
    const std::vector<Window> w = sliding_windows(10, 4, 2);
    REQUIRE(w.size() == 4);
    CHECK(w[0].begin == 0);
    CHECK(w[0].first_target == 1);
    CHECK(w[1].begin == 2);
    CHECK(w[1].end == 6);
    CHECK(w[1].first_target == 4);
    CHECK(w[3].end == 10);
    for (int64_t n : {2, 9, 10, 11, 37}) {
        for (int64_t stride : {1, 2, 3, 4}) {
            std::vector<int> seen(size_t(n), 0);
            for (const Window& x : sliding_windows(n, 4, stride)) {
                CHECK(x.n_tokens() <= 4);
                for (int64_t t = x.first_target; t < x.end; ++t) ++seen[size_t(t)];
            }
            CAPTURE(n);
            CAPTURE(stride);
            CHECK(seen[0] == 0);
            // With stride == n_ctx each window's first token has no context: HF skips it.
            for (int64_t t = 1; t < n; ++t)
                CHECK(seen[size_t(t)] == (stride == 4 && t % 4 == 0 ? 0 : 1));
        }
    }
    CHECK_THROWS_AS(sliding_windows(10, 4, 5), std::runtime_error);
}

TEST_CASE("compute_perplexity on known logits: NLLs, BOS substitution, first_logit") {
    // Vocabulary 3. The evaluator's row for position p gives p(token) = (1/2, 1/3, 1/6),
    // whatever the input, so the NLL of each target is known exactly.
    const int64_t V = 3;
    const std::vector<int32_t> tokens = {2, 0, 1, 2, 0, 0, 1, 1, 2, 0};
    const float row[3] = {std::log(3.f), std::log(2.f), std::log(1.f)};
    std::vector<float> out;
    std::vector<std::vector<int32_t>> seen;
    const WindowEvaluator eval = [&](const int32_t* t, int64_t n, int64_t first_logit) {
        seen.emplace_back(t, t + n);
        out.clear();
        for (int64_t p = first_logit; p < n; ++p) out.insert(out.end(), row, row + 3);
        return out.data();
    };
    const double nll[3] = {std::log(2.0), std::log(3.0), std::log(6.0)};
    PerplexityOptions po;
    po.n_vocab = V;
    po.bos_first = true;
    po.bos_id = 1;
    const std::vector<Window> w = llama_chunks(int64_t(tokens.size()), 4);  // targets: tokens[3], tokens[7]
    size_t observed = 0;
    const PerplexityResult r = compute_perplexity(tokens, w, po, eval,
        [&](size_t i, const Window& x, const float* logits, const PerplexityResult& so_far) {
            CHECK(i == observed++);
            CHECK(logits[0] == row[0]);
            CHECK(so_far.running_ppl.size() == i + 1);
            (void)x;
        });
    CHECK(observed == 2);
    REQUIRE(seen.size() == 2);
    // First token replaced by BOS (1); the last token is only a target, never fed.
    CHECK(seen[0] == std::vector<int32_t>{1, 0, 1});
    CHECK(seen[1] == std::vector<int32_t>{1, 0, 1});
    const double want = (nll[tokens[3]] + nll[tokens[7]]) / 2;
    CHECK(r.stats.count == 2);
    // Tolerance: the logits are log(3), log(2), 0 rounded to float: measured 3.9e-9, 7.8e-9, 9.0e-9.
    CHECK_NEAR(r.stats.mean(), want, 9e-8);
    CHECK_NEAR(r.ppl(), std::exp(want), 9e-8);
    CHECK_NEAR(r.running_ppl[0], std::exp(nll[tokens[3]]), 9e-8);

    // Sliding windows score every token after the first, no BOS substitution.
    po.bos_first = false;
    seen.clear();
    const PerplexityResult s = compute_perplexity(tokens, sliding_windows(int64_t(tokens.size()), 4, 2), po, eval);
    double sum = 0;
    for (size_t t = 1; t < tokens.size(); ++t) sum += nll[tokens[t]];
    CHECK(s.stats.count == int64_t(tokens.size()) - 1);
    CHECK_NEAR(s.stats.mean(), sum / double(tokens.size() - 1), 5e-9);  // measured 5.3e-10
    CHECK(seen[0][0] == tokens[0]);
}

TEST_CASE("transformer_evaluator: split prefill gives the full forward's logits") {
    test::TempPath path("ppl_model.gguf");
    auto model = test::load_tiny_gpt2(path.path, DType::F32, 9);
    const int64_t V = model->config().n_vocab, n = 32;
    std::mt19937 rng(1);
    std::vector<int32_t> tokens(size_t(n * 3));
    for (int32_t& t : tokens) t = int32_t(rng() % uint32_t(V));
    TransformerOptions to;
    to.n_ctx = n;
    Transformer tf(*model, to), ref(*model, to);
    const PerplexityOptions po{V, false, -1};
    const PerplexityResult r = compute_perplexity(tokens, llama_chunks(int64_t(tokens.size()), n), po, transformer_evaluator(tf));
    // The same chunks from one full forward pass each.
    NllStats want;
    for (const Window& w : llama_chunks(int64_t(tokens.size()), n)) {
        ref.reset();
        const float* all = ref.forward(tokens.data() + w.begin, n, true);
        for (int64_t t = w.first_target; t < w.end; ++t)
            want.add(token_nll(all + (t - 1 - w.begin) * V, V, tokens[size_t(t)]));
    }
    CHECK(r.stats.count == want.count);
    // measured 0 on AVX-512: both split the prefill the same way here. Another split moves the
    // logits by up to 1.1e-6 (test_forward's batch sizes), hence a bound that allows that.
    CHECK_NEAR(r.ppl(), want.ppl(), 1e-6);
}

TEST_CASE("log-prob rows: llama.cpp's 16-bit compression, error below half a step") {
    std::mt19937 rng(4);
    std::normal_distribution<float> nd(0.f, 3.f);
    const int64_t V = 101;  // odd: one padding uint16
    std::vector<float> logits(static_cast<size_t>(V));
    for (float& l : logits) l = nd(rng);
    std::vector<uint16_t> row(size_t(log_prob_row_len(V)), 0xffff);
    CHECK(row.size() == 2 * 51 + 4);
    compress_log_probs(logits.data(), V, row.data());
    CHECK(row.back() == 0);
    float scale;
    std::memcpy(&scale, row.data(), 4);
    double lse = 0, mx = logits[0];
    for (float l : logits) mx = std::max(mx, double(l));
    for (float l : logits) lse += std::exp(double(l) - mx);
    lse = mx + std::log(lse);
    double worst = 0;
    for (int64_t i = 0; i < V; ++i) {
        const double lp = double(logits[size_t(i)]) - lse;
        if (lp > std::log(1e-7)) worst = std::max(worst, std::fabs(stored_log_prob(row.data(), i) - lp));
    }
    MESSAGE("worst stored log-prob error " << worst << " (step " << scale << ")");
    CHECK(worst <= 0.5 * scale + 1e-5);
}

TEST_CASE("KLStats: zero for the same model, the exact KL for known distributions") {
    const int64_t V = 4;
    const float p_logits[4] = {std::log(.1f), std::log(.2f), std::log(.3f), std::log(.4f)};
    const float q_logits[4] = {std::log(.25f), std::log(.25f), std::log(.25f), std::log(.25f)};
    std::vector<uint16_t> base(size_t(log_prob_row_len(V)));
    compress_log_probs(p_logits, V, base.data());
    KLStats same, other;
    for (int i = 0; i < 20; ++i) {
        same.add(p_logits, V, base.data(), 3);
        other.add(q_logits, V, base.data(), 3);
    }
    const KLReport a = same.report(), b = other.report();
    CHECK_NEAR(a.kld.mean, 0.0, 4e-6);  // the 16-bit log-probs: measured 4.0e-7
    CHECK(a.same_top.mean == 1.0);
    CHECK_NEAR(a.ppl_ratio.mean, 1.0, 6e-7);  // the 16-bit log-probs: measured 5.7e-8
    double kl = 0;
    for (double p : {.1, .2, .3, .4}) kl += p * std::log(p / .25);
    MESSAGE("KL(p||uniform) = " << kl << ", measured " << b.kld.mean);
    CHECK_NEAR(b.kld.mean, kl, 3.5e-6);  // measured 3.4e-7
    // identical positions: no spread, up to the rounding of mean(x^2) - mean^2: measured 5.9e-10
    CHECK_NEAR(b.kld.err, 0.0, 6e-9);
    CHECK(b.same_top.mean == 0.0);  // argmax 0 (first of ties) vs 3
    CHECK_NEAR(b.ppl.mean, 4.0, 1e-12);  // uniform: measured 0
    CHECK_NEAR(b.ppl_base.mean, 1 / .4, 6e-7);  // the 16-bit log-probs: measured 5.8e-8
    CHECK(format_kl_report(b).find("Mean    KLD:") != std::string::npos);
}

TEST_CASE("log-prob file: written and read back; truncated or foreign files rejected") {
    test::TempPath path("ppl_logits.bin"), cut("ppl_logits_cut.bin");
    const int64_t n_ctx = 8, V = 5, n_chunk = 2;
    std::vector<int32_t> tokens(size_t(n_ctx * n_chunk));
    for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = int32_t(i % size_t(V));
    std::vector<std::vector<float>> rows;
    {
        LogProbWriter w(path.path, n_ctx, V, n_chunk, tokens.data());
        for (int64_t r = 0; r < n_chunk * (n_ctx - 1 - n_ctx / 2); ++r) {
            rows.push_back({float(r), 0.f, 1.f, -2.f, 0.5f});
            w.add_row(rows.back().data());
        }
        CHECK_THROWS_AS(w.add_row(rows.back().data()), std::runtime_error);
        w.commit();
    }
    LogProbFile f(path.path);
    CHECK(f.n_ctx() == n_ctx);
    CHECK(f.n_vocab() == V);
    CHECK(f.n_chunk() == n_chunk);
    CHECK(f.rows_per_chunk() == 3);
    CHECK(f.tokens() == tokens);
    std::vector<uint16_t> want(size_t(log_prob_row_len(V)));
    compress_log_probs(rows[4].data(), V, want.data());
    CHECK(std::memcmp(f.row(1, 1), want.data(), want.size() * 2) == 0);

    // A writer destroyed before commit leaves nothing; a short file is refused.
    { LogProbWriter w(cut.path, n_ctx, V, n_chunk, tokens.data()); }
    CHECK(std::fopen(cut.path.c_str(), "rb") == nullptr);
    {
        FILE* in = std::fopen(path.path.c_str(), "rb");
        std::vector<char> bytes(4096);
        const size_t n = std::fread(bytes.data(), 1, bytes.size(), in);
        std::fclose(in);
        FILE* out = std::fopen(cut.path.c_str(), "wb");
        std::fwrite(bytes.data(), 1, n - 2, out);
        std::fclose(out);
    }
    CHECK_THROWS_WITH_AS(LogProbFile{cut.path}, doctest::Contains("truncated"), std::runtime_error);
    {
        FILE* out = std::fopen(cut.path.c_str(), "wb");
        std::fputs("GGUF and more bytes than a header", out);
        std::fclose(out);
    }
    CHECK_THROWS_WITH_AS(LogProbFile{cut.path}, doctest::Contains("_logits_"), std::runtime_error);
}

TEST_CASE("progress bar text: counter, percent, ETA, note; fits the width") {
    const std::string s = ProgressBar::render("perplexity", 5, 10, 2.0, "PPL 12.3", 80);
    CHECK(s.rfind("perplexity [", 0) == 0);
    CHECK(s.find(" 5/10  50%") != std::string::npos);
    CHECK(s.find("ETA 2s") != std::string::npos);
    CHECK(s.find("PPL 12.3") != std::string::npos);
    CHECK(s.size() <= 79);
    CHECK(ProgressBar::render("q", 10, 10, 1.0, "", 80).find("ETA") == std::string::npos);
    CHECK(ProgressBar::render("a-very-long-label", 1, 3, 1.0, std::string(200, 'x'), 40).size() <= 39);
    // Not a terminal: nothing drawn until the final line.
    FILE* f = std::tmpfile();
    {
        ProgressBar bar("work", 3, f, false);
        bar.update(1);
        bar.update(3, "done");
        bar.finish("ok");
    }
    std::rewind(f);
    char buf[256] = {0};
    const size_t n = std::fread(buf, 1, sizeof buf - 1, f);
    std::fclose(f);
    const std::string text(buf, n);
    CHECK(text.rfind("work: ok (3/3 in ", 0) == 0);
    CHECK(text.find('\r') == std::string::npos);
    // Drawing (as on a terminal): redrawn in place, erased before a printed line and at the end.
    FILE* g = std::tmpfile();
    {
        ProgressBar bar("work", 2, g, true);
        bar.update(2, "x");
        bar.print_line(g, "a line");
        bar.finish();
    }
    std::rewind(g);
    const size_t m = std::fread(buf, 1, sizeof buf - 1, g);
    std::fclose(g);
    const std::string drawn(buf, m);
    CHECK(drawn.find("\r\033[Kwork [") != std::string::npos);
    CHECK(drawn.find("\r\033[Ka line\n") != std::string::npos);
    CHECK(drawn.find("\r\033[Kwork: (2/2 in ") != std::string::npos);
}
