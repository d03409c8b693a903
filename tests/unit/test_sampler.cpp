// Samplers on tiny distributions with exactly computed expected probabilities,
// an empirical chi-square check of 100 000 draws, and the RNG's fixed sequence.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <limits>
#include <random>
#include <stdexcept>
#include <vector>

#include "check_near.h"
#include "eval/rng.h"
#include "eval/sampler.h"

using namespace minigpt;

namespace {

// Logits whose softmax is exactly `probs` (up to float rounding of log).
std::vector<float> logits_of(const std::vector<double>& probs) {
    std::vector<float> l;
    for (double p : probs) l.push_back(float(std::log(p)));
    return l;
}

Candidates make(const std::vector<float>& logits) {
    Candidates c;
    c.reset(logits.data(), int32_t(logits.size()));
    return c;
}

std::vector<int32_t> ids(const Candidates& c) {
    std::vector<int32_t> out;
    for (const Candidate& x : c) out.push_back(x.id);
    return out;
}

using Ids = std::vector<int32_t>;

const std::vector<double> kQuarter = {0.5, 0.25, 0.125, 0.125};  // exact in binary

// Pearson's chi-square statistic of observed counts against expected probabilities.
double chi_square(const std::vector<long>& observed, const std::vector<double>& expected_p, long n) {
    double x2 = 0;
    for (size_t i = 0; i < observed.size(); ++i) {
        const double e = expected_p[i] * double(n);
        x2 += (double(observed[i]) - e) * (double(observed[i]) - e) / e;
    }
    return x2;
}

}  // namespace

TEST_CASE("rng: SplitMix64 and xoshiro256** give the published / independently computed sequence") {
    // SplitMix64 from state 0: first output 0xe220a8397b1dcdaf, the value the
    // reference splitmix64.c prints (also used by many ports' test suites).
    uint64_t s = 0;
    CHECK(splitmix64(s) == 0xe220a8397b1dcdafULL);

    // Expected values computed once by an independent Python implementation of
    // SplitMix64 seeding + xoshiro256** (written from the published C code, run
    // with python3 while writing this test):
    //   seed 0  -> 0x99ec5f36cb75f2b4 0xbf6e1f784956452a 0x1a5f849d4933e6e0 0x6aa594f1262d2d2c 0xbba5ad4a1f842e59
    //   seed 42 -> 0x15780b2e0c2ec716 0x6104d9866d113a7e 0xae17533239e499a1 0xecb8ad4703b360a1 0xfde6dc7fe2ec5e64
    const uint64_t expect0[] = {0x99ec5f36cb75f2b4ULL, 0xbf6e1f784956452aULL, 0x1a5f849d4933e6e0ULL,
                                0x6aa594f1262d2d2cULL, 0xbba5ad4a1f842e59ULL};
    const uint64_t expect42[] = {0x15780b2e0c2ec716ULL, 0x6104d9866d113a7eULL, 0xae17533239e499a1ULL,
                                 0xecb8ad4703b360a1ULL, 0xfde6dc7fe2ec5e64ULL};
    Rng r0(0), r42(42);
    for (int i = 0; i < 5; ++i) {
        CHECK(r0.next() == expect0[i]);
        CHECK(r42.next() == expect42[i]);
    }
    // uniform() = top 24 bits * 2^-24; same Python run: seed 42 gives
    // 0.08386296033859253, 0.37898021936416626, 0.6800433993339539 (exact in float).
    Rng u(42);
    CHECK(u.uniform() == 0.08386296033859253f);
    CHECK(u.uniform() == 0.37898021936416626f);
    CHECK(u.uniform() == 0.6800433993339539f);
    // Range and granularity over many draws.
    Rng w(7);
    for (int i = 0; i < 100000; ++i) {
        const float x = w.uniform();
        REQUIRE(x >= 0.0f);
        REQUIRE(x < 1.0f);
        REQUIRE(x * 16777216.0f == std::floor(x * 16777216.0f));
    }
}

TEST_CASE("softmax: exact probabilities, sorted by descending logit, ties by id") {
    Candidates c = make(logits_of({0.125, 0.5, 0.125, 0.25}));
    softmax(c);
    CHECK(ids(c) == Ids{0, 1, 2, 3});  // softmax alone does not reorder
    sort_candidates(c);
    CHECK(ids(c) == Ids{1, 3, 0, 2});
    const double expect[] = {0.5, 0.25, 0.125, 0.125};
    // float probabilities: measured 0 (powers of two); bound about two float ulps
    for (size_t i = 0; i < 4; ++i) CHECK_NEAR(c.data[i].p, expect[i], 1e-7);
}

TEST_CASE("top-k keeps exactly the k largest logits") {
    const std::vector<float> l = {1, 3, 2, 3, 0};
    {
        Candidates c = make(l);
        apply_top_k(c, 2);
        CHECK(ids(c) == Ids{1, 3});
        softmax(c);  // renormalized over the survivors: equal logits, 1/2 each
        CHECK_NEAR(c.data[0].p, 0.5, 1e-7);  // measured 0; about two float ulps
        CHECK_NEAR(c.data[1].p, 0.5, 1e-7);
    }
    {
        Candidates c = make(l);
        apply_top_k(c, 1);  // the tie at the top goes to the smaller id
        CHECK(ids(c) == Ids{1});
    }
    {
        Candidates c = make(l);
        apply_top_k(c, 3);
        CHECK(ids(c) == Ids{1, 3, 2});
    }
    {
        Candidates c = make({2, 1, 1, 1, 0});  // tie across the boundary
        apply_top_k(c, 2);
        CHECK(ids(c) == Ids{0, 1});
    }
    for (int32_t k : {5, 6, 1000, 0, -1}) {  // k >= n, or off: the whole set
        Candidates c = make(l);
        apply_top_k(c, k);
        CHECK(c.size == 5);
    }
}

TEST_CASE("top-p keeps the smallest prefix whose cumulative probability reaches p") {
    struct Case {
        float p;
        Ids keep;
    };
    // probabilities 0.5, 0.25, 0.125, 0.125 (ids 0..3)
    const Case cases[] = {
        {1e-9f, {0}},            // keeps at least one
        {0.3f, {0}},
        {0.5f, {0}},             // exactly reached by the first token
        {0.51f, {0, 1}},
        {0.75f, {0, 1}},         // exactly reached
        {0.76f, {0, 1, 2}},
        {0.875f, {0, 1, 2}},
        {0.9f, {0, 1, 2, 3}},
        {1.0f, {0, 1, 2, 3}},    // off
    };
    for (bool presorted : {false, true}) {  // the partial-sort path and the sorted path
        for (const Case& t : cases) {
            CAPTURE(t.p);
            CAPTURE(presorted);
            Candidates c = make(logits_of(kQuarter));
            if (presorted) sort_candidates(c);
            apply_top_p(c, t.p);
            CHECK(ids(c) == t.keep);
        }
    }
    // Ties: four equal tokens, p = 0.5 keeps two (the smaller ids), 0.6 keeps three.
    Candidates c = make({0, 0, 0, 0});
    apply_top_p(c, 0.5f);
    CHECK(ids(c) == Ids{0, 1});
    // A kept prefix longer than the first partial sort (128): 1000 equal tokens, p = 0.5.
    std::vector<float> flat(1000, 1.5f);
    flat[999] = 2.0f;  // one larger: first, then ids 0.. in order
    c = make(flat);
    apply_top_p(c, 0.5f);
    REQUIRE(c.size > 128);
    CHECK(c.data[0].id == 999);
    for (size_t i = 1; i < c.size; ++i) CHECK(c.data[i].id == int32_t(i - 1));
    // exactly the smallest prefix: p(999) = e^0.5 / (e^0.5 + 999), the others 1 / (e^0.5 + 999)
    const double z = std::exp(0.5) + 999, p0 = std::exp(0.5) / z;
    CHECK(c.size == size_t(1 + std::ceil((0.5 - p0) * z)));
    c = make({0, 0, 0, 0});
    apply_top_p(c, 0.6f);
    CHECK(ids(c) == Ids{0, 1, 2});
}

TEST_CASE("min-p keeps tokens with p >= min_p * p_max") {
    struct Case {
        float min_p;
        Ids keep;
    };
    const Case cases[] = {
        {0.0f, {0, 1, 2, 3}},   // off
        {0.25f, {0, 1, 2, 3}},  // 0.125 == 0.25 * 0.5: on the boundary, kept
        {0.26f, {0, 1}},
        {0.5f, {0, 1}},         // 0.25 == 0.5 * 0.5
        {0.51f, {0}},
        {1.0f, {0}},
    };
    for (bool presorted : {false, true}) {  // the partition path and the sorted path
        for (const Case& t : cases) {
            CAPTURE(t.min_p);
            CAPTURE(presorted);
            Candidates c = make(logits_of({0.125, 0.125, 0.25, 0.5}));  // reversed: ids 3, 2, 1|0
            if (presorted) sort_candidates(c);
            apply_min_p(c, t.min_p);
            if (t.min_p == 0.0f) {  // off: the buffer is left as it was
                CHECK(c.size == 4);
                continue;
            }
            Ids expect;
            for (int32_t i : t.keep) expect.push_back(3 - i);
            if (expect.size() == 4) expect = {3, 2, 0, 1};  // the tie 0.125/0.125 in id order
            CHECK(ids(c) == expect);
        }
    }
    Candidates c = make(logits_of({0.4, 0.4, 0.2}));  // tie at the maximum: min-p 1 keeps both
    apply_min_p(c, 1.0f);
    CHECK(ids(c) == Ids{0, 1});
}

TEST_CASE("temperature rescales as exp(l / T); T = 0 keeps the argmax") {
    const std::vector<float> l = {1.0f, 2.0f, 3.0f, -0.5f};
    for (float T : {0.5f, 1.0f, 2.0f, 7.0f}) {
        CAPTURE(T);
        Candidates c = make(l);
        apply_temperature(c, T);
        softmax(c);
        double z = 0;
        for (float x : l) z += std::exp(double(x) / T);
        // float probabilities against double: measured up to 1.9e-8
        for (const Candidate& x : c) CHECK_NEAR(x.p, std::exp(double(l[size_t(x.id)]) / T) / z, 2e-7);
    }
    Candidates c = make({1.0f, 3.0f, 0.0f, 3.0f});
    apply_temperature(c, 0.0f);
    CHECK(ids(c) == Ids{1});  // tie at the maximum: smaller id
}

TEST_CASE("repetition penalty as llama.cpp: divide positive logits, multiply the others, once per distinct token") {
    Candidates c = make({2.0f, -1.0f, 0.5f, 3.0f, 0.0f});
    const int32_t recent[] = {0, 1, 1, 4, 1};
    apply_repetition_penalty(c, recent, 5, 2.0f);
    CHECK(c.data[0].logit == 1.0f);   // 2 / 2
    CHECK(c.data[1].logit == -2.0f);  // -1 * 2, once although it occurs three times
    CHECK(c.data[2].logit == 0.5f);   // not recent
    CHECK(c.data[3].logit == 3.0f);   // not recent
    CHECK(c.data[4].logit == 0.0f);   // 0 * 2
    Candidates d = make({2.0f, -1.0f});
    apply_repetition_penalty(d, recent, 2, 1.0f);  // penalty 1: nothing changes
    CHECK(d.data[0].logit == 2.0f);
    CHECK(d.data[1].logit == -1.0f);
    // Works on a set that was already sorted and filtered (ids not at their index).
    Candidates e = make({0.0f, 4.0f, 1.0f});
    apply_top_k(e, 2);  // {1, 2}
    const int32_t r2[] = {2, 0};
    apply_repetition_penalty(e, r2, 2, 4.0f);  // id 2: 1 -> 0.25; id 0 is gone
    softmax(e);
    CHECK(ids(e) == Ids{1, 2});
    CHECK(e.data[1].logit == 0.25f);
}

TEST_CASE("sampler: the repetition window is the last repeat_last_n ids of the history") {
    const std::vector<float> l = {3.0f, 2.9f, 1.0f};
    SamplerParams p;
    p.temp = 0;
    p.repeat_penalty = 2.0f;
    p.repeat_last_n = 1;
    const int32_t hist[] = {0, 2};
    Sampler s(p, 3);
    CHECK(s.sample(l.data(), hist, 2) == 0);  // only id 2 is in the window
    p.repeat_last_n = 2;
    Sampler s2(p, 3);
    CHECK(s2.sample(l.data(), hist, 2) == 1);  // id 0: 3 -> 1.5 < 2.9
    p.repeat_last_n = -1;                      // whole history
    Sampler s3(p, 3);
    CHECK(s3.sample(l.data(), hist, 2) == 1);
    p.repeat_last_n = 0;                       // off
    Sampler s4(p, 3);
    CHECK(s4.sample(l.data(), hist, 2) == 0);
}

TEST_CASE("sampler: greedy returns the argmax with probability 1 and the model's softmax probability") {
    const std::vector<float> l = logits_of({0.1, 0.6, 0.3});
    SamplerParams p;
    p.temp = 0;
    p.model_probability = true;
    Sampler s(p, 3);
    CHECK(s.sample(l.data(), nullptr, 0) == 1);
    CHECK(s.chosen_probability() == 1.0f);
    CHECK_NEAR(s.chosen_model_probability(), 0.6, 1.5e-7);  // measured 1.5e-8
    CHECK(s.final_distribution().size == 1);
}

TEST_CASE("sampler: the whole chain gives the exactly computed distribution; 100 000 draws match it (chi-square)") {
    // probabilities 0.4 0.3 0.15 0.1 0.05. top-k 3 -> {0,1,2} renormalized
    // {8/17, 6/17, 3/17}; top-p 0.8: 8/17 = 0.47 < 0.8 <= 14/17 -> {0,1};
    // min-p 0.1: 0.3/0.4 >= 0.1 -> {0,1}; T = 0.5 squares the probabilities:
    // {0.16, 0.09} / 0.25 = {0.64, 0.36}.
    const std::vector<float> l = logits_of({0.4, 0.3, 0.15, 0.1, 0.05});
    SamplerParams p;
    p.top_k = 3;
    p.top_p = 0.8f;
    p.min_p = 0.1f;
    p.temp = 0.5f;
    p.seed = 1234;
    p.model_probability = true;
    Sampler s(p, 5);
    const int32_t first = s.sample(l.data(), nullptr, 0);
    const Candidates& fd = s.final_distribution();
    REQUIRE(fd.size == 2);
    CHECK(fd.data[0].id == 0);
    CHECK_NEAR(fd.data[0].p, 0.64, 1e-7);  // measured 8.7e-9, 1.1e-8, 4.3e-9 for the three
    CHECK(fd.data[1].id == 1);
    CHECK_NEAR(fd.data[1].p, 0.36, 1e-7);
    CHECK_NEAR(s.chosen_model_probability(), first == 0 ? 0.4 : 0.3, 1e-7);

    const Candidate* buffer = fd.data.data();
    const long n = 100000;
    std::vector<long> counts(5, 0);
    counts[size_t(first)]++;
    for (long i = 1; i < n; ++i) counts[size_t(s.sample(l.data(), nullptr, 0))]++;
    CHECK(s.final_distribution().data.data() == buffer);  // the buffer is reused, never reallocated
    CHECK(counts[2] + counts[3] + counts[4] == 0);
    // df = 1; the 0.999 quantile of chi-square(1) is 10.83.
    const double x2 = chi_square({counts[0], counts[1]}, {0.64, 0.36}, n);
    MESSAGE("chain (top-k 3, top-p 0.8, min-p 0.1, T 0.5): counts " << counts[0] << " " << counts[1]
                                                                     << ", chi-square " << x2 << " (critical 10.83, df 1)");
    CHECK(x2 < 10.83);
}

TEST_CASE("sampler: 100 000 draws at T = 1 and T = 2 with no filters match softmax(l / T) (chi-square)") {
    const std::vector<double> probs = {0.4, 0.3, 0.15, 0.1, 0.05};
    const std::vector<float> l = logits_of(probs);
    for (float T : {1.0f, 2.0f}) {
        SamplerParams p;
        p.top_k = 0;
        p.top_p = 1.0f;
        p.min_p = 0.0f;
        p.temp = T;
        p.seed = 99;
        Sampler s(p, 5);
        std::vector<double> expect;
        double z = 0;
        for (double q : probs) z += std::pow(q, 1.0 / T);
        for (double q : probs) expect.push_back(std::pow(q, 1.0 / T) / z);
        const long n = 100000;
        std::vector<long> counts(5, 0);
        for (long i = 0; i < n; ++i) counts[size_t(s.sample(l.data(), nullptr, 0))]++;
        // df = 4; the 0.999 quantile of chi-square(4) is 18.47.
        const double x2 = chi_square(counts, expect, n);
        MESSAGE("T " << T << ": counts " << counts[0] << " " << counts[1] << " " << counts[2] << " " << counts[3] << " "
                     << counts[4] << ", chi-square " << x2 << " (critical 18.47, df 4)");
        CHECK(x2 < 18.47);
    }
}

TEST_CASE("sampler: the same seed gives the same draws; another seed differs") {
    const std::vector<float> l = logits_of({0.2, 0.2, 0.2, 0.2, 0.2});
    SamplerParams p;
    p.top_k = 0;
    p.min_p = 0;
    p.top_p = 1;
    p.temp = 1;
    auto run = [&](uint64_t seed) {
        p.seed = seed;
        Sampler s(p, 5);
        std::vector<int32_t> out;
        for (int i = 0; i < 64; ++i) out.push_back(s.sample(l.data(), nullptr, 0));
        return out;
    };
    CHECK(run(5) == run(5));
    CHECK(run(5) != run(6));
}

TEST_CASE("sampler: rejects parameters outside their ranges") {
    SamplerParams p;
    p.top_p = 0.0f;
    CHECK_THROWS_WITH_AS(Sampler(p, 4), doctest::Contains("top-p"), std::runtime_error);
    p = SamplerParams{};
    p.top_p = 1.5f;
    CHECK_THROWS_AS(Sampler(p, 4), std::runtime_error);
    p = SamplerParams{};
    p.min_p = -0.1f;
    CHECK_THROWS_WITH_AS(Sampler(p, 4), doctest::Contains("min-p"), std::runtime_error);
    p = SamplerParams{};
    p.temp = -1;
    CHECK_THROWS_AS(Sampler(p, 4), std::runtime_error);
}

TEST_CASE("sampler: a banned token (--ignore-eos) is never chosen, greedy or sampled") {
    const std::vector<float> l = logits_of({0.7, 0.2, 0.1});
    SamplerParams p;
    p.temp = 0;
    p.ban_token = 0;
    p.model_probability = true;
    Sampler g(p, 3);
    CHECK(g.sample(l.data(), nullptr, 0) == 1);
    CHECK_NEAR(g.chosen_model_probability(), 0.2, 1e-7);  // the model's own probability; measured 9.9e-9
    p.temp = 1;
    p.top_k = 0;
    p.top_p = 1;
    p.min_p = 0;
    p.seed = 11;
    Sampler s(p, 3);
    long counts[3] = {0, 0, 0};
    for (int i = 0; i < 10000; ++i) counts[s.sample(l.data(), nullptr, 0)]++;
    CHECK(counts[0] == 0);
    CHECK(counts[1] > counts[2]);
}

TEST_CASE("top-p + min-p in one step equals top-p then min-p (random distributions)") {
    Rng rng(2024);
    int n_cases = 0;
    for (int trial = 0; trial < 300; ++trial) {
        const int32_t n = 1 + int32_t(rng.next() % 3000);
        std::vector<float> l(static_cast<size_t>(n), 0.0f);
        const float scale = 0.5f + 8.0f * rng.uniform();
        for (float& x : l) x = scale * (rng.uniform() - 0.5f);
        if (trial % 7 == 0) l.assign(size_t(n), 1.0f);  // all tied
        const float top_p = 0.05f + 0.95f * rng.uniform(), min_p = rng.uniform() * 0.5f;
        Candidates a = make(l), b = make(l);
        apply_top_p(a, top_p);
        apply_min_p(a, min_p);
        apply_top_p_min_p_unsorted(b, top_p, min_p);
        CAPTURE(trial);
        REQUIRE(ids(a) == ids(b));
        ++n_cases;
    }
    MESSAGE(n_cases << " random cases: same kept set and order");
}

TEST_CASE("sampler: greedy in one pass picks what the chain's temperature-0 step picks (ties, ban, -inf, NaN)") {
    // The chain: every token a candidate, the ban as -inf, then apply_temperature(0)
    // (the first in the order larger logit, then smaller id).
    std::mt19937 rng(5);
    std::uniform_int_distribution<int> level(0, 3), pick(0, 63);
    const float specials[] = {-std::numeric_limits<float>::infinity(), std::numeric_limits<float>::quiet_NaN()};
    int differ = 0, cases = 0;
    for (int trial = 0; trial < 2000; ++trial) {
        const int32_t n = 1 + pick(rng);
        std::vector<float> l(static_cast<size_t>(n));
        for (float& x : l) x = float(level(rng));  // few levels: many ties
        if (trial % 3 == 0) l[size_t(pick(rng) % n)] = specials[trial % 2];
        SamplerParams p;
        p.temp = 0;
        p.ban_token = trial % 4 == 0 ? pick(rng) % n : -1;
        Sampler s(p, n);
        const int32_t got = s.sample(l.data(), nullptr, 0);
        Candidates c;
        c.reset(l.data(), n);
        if (p.ban_token >= 0) c.data[size_t(p.ban_token)].logit = -std::numeric_limits<float>::infinity();
        apply_temperature(c, 0.0f);
        differ += got != c.data[0].id;
        ++cases;
        CHECK(s.final_distribution().size == 1);
        CHECK(s.final_distribution().data[0].id == got);
    }
    MESSAGE(cases << " cases, " << differ << " differ (must be 0)");
    CHECK(differ == 0);
}
