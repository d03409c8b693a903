// Head statistics on hand-built attention patterns whose values are known
// exactly: previous-token, uniform, sink, duplicate-token and induction
// patterns, and the Jensen-Shannon similarity of identical and disjoint heads.
#include <doctest/doctest.h>

#include <cmath>
#include <set>
#include <vector>

#include "check_near.h"
#include "analysis/head_stats.h"

using namespace minigpt;

namespace {

// A (T, T) pattern, row i over keys 0..i, built row by row.
struct Pattern {
    int64_t T;
    std::vector<float> w;
    explicit Pattern(int64_t t) : T(t), w(size_t(t * t), 0.f) {}
    float* row(int64_t i) { return w.data() + i * T; }
    static Pattern previous_token(int64_t T) {
        Pattern p(T);
        p.row(0)[0] = 1;
        for (int64_t i = 1; i < T; ++i) p.row(i)[i - 1] = 1;
        return p;
    }
    static Pattern uniform(int64_t T) {
        Pattern p(T);
        for (int64_t i = 0; i < T; ++i)
            for (int64_t j = 0; j <= i; ++j) p.row(i)[j] = 1.f / float(i + 1);
        return p;
    }
    static Pattern sink(int64_t T) {
        Pattern p(T);
        for (int64_t i = 0; i < T; ++i) p.row(i)[0] = 1;
        return p;
    }
};

std::vector<int32_t> distinct_ids(int64_t n, int32_t first) {
    std::vector<int32_t> ids;
    for (int64_t i = 0; i < n; ++i) ids.push_back(first + int32_t(i));
    return ids;
}

HeadScores score_text(Pattern& p, const std::vector<int32_t>& ids, int64_t batch) {
    HeadStatsAccumulator acc(1, 1);
    const TokenWindow w(ids);
    // Fed in batches, as the forward pass emits rows (pos0 advances).
    for (int64_t pos0 = 0; pos0 < p.T; pos0 += batch)
        acc.add_text(0, 0, p.row(pos0), p.T, pos0, std::min(batch, p.T - pos0), w);
    return acc.scores(0, 0);
}

}  // namespace

TEST_CASE("head stats: row entropy of a uniform row is ln n; distance and JS divergence on known rows") {
    for (int64_t n : {1, 2, 7, 64, 1000}) {
        std::vector<float> row(size_t(n), 1.f / float(n));
        CAPTURE(n);
        CHECK_NEAR(row_entropy(row.data(), n), std::log(double(n)), 5e-7);  // measured 3.5e-8 (rows of 1/n in float)
        // distance of a uniform row at query position n-1: mean of 0..n-1 = (n-1)/2
        CHECK_NEAR(row_distance(row.data(), n), double(n - 1) / 2, 5e-7);  // measured 4.7e-8
    }
    const float one_hot[2] = {1, 0}, other[2] = {0, 1}, half[2] = {0.5f, 0.5f};
    CHECK(js_divergence(one_hot, one_hot, 2) == 0.0);
    // Exact inputs, double arithmetic: measured 0 for the three; bound a few double ulps.
    CHECK_NEAR(js_divergence(one_hot, other, 2), std::log(2.0), 1e-14);
    // p = (1, 0), q = (1/2, 1/2), m = (3/4, 1/4): JSD = (ln(4/3) + (ln(2/3) + ln 2) / 2) / 2
    const double expected = 0.5 * (std::log(4.0 / 3) + 0.5 * (std::log(2.0 / 3) + std::log(2.0)));
    CHECK_NEAR(js_divergence(one_hot, half, 2), expected, 1e-14);
    CHECK_NEAR(js_divergence(half, one_hot, 2), expected, 1e-14);
}

TEST_CASE("head stats: a pure previous-token pattern scores 1 on previous-token, 0 entropy, distance 1") {
    const int64_t T = 40;
    Pattern p = Pattern::previous_token(T);
    for (int64_t batch : {T, int64_t(7), int64_t(1)}) {
        const HeadScores s = score_text(p, distinct_ids(T, 10), batch);
        CAPTURE(batch);
        CHECK(s.prev_token == 1.0);
        CHECK(s.entropy == 0.0);
        CHECK(s.distance == 1.0);
        CHECK_NEAR(s.sink, 1.0 / double(T - 1), 1e-14);  // only row 1's previous token is token 0 (measured 0)
        CHECK(s.dup_token == 0.0);                                // no token repeats
    }
}

TEST_CASE("head stats: uniform rows have entropy ln(i+1) at row i; sink and previous weight 1/(i+1)") {
    const int64_t T = 33;
    Pattern p = Pattern::uniform(T);
    const HeadScores s = score_text(p, distinct_ids(T, 3), 5);
    double entropy = 0, inv = 0, dist = 0;
    for (int64_t i = 1; i < T; ++i) {
        entropy += std::log(double(i + 1));
        inv += 1.0 / double(i + 1);
        dist += double(i) / 2;
    }
    const double rows = double(T - 1);
    // Rows of 1/(i+1) in float: measured 8.2e-9, 1.5e-9, 1.5e-9, 1.5e-8; bounds ~10x.
    CHECK_NEAR(s.entropy, entropy / rows, 8e-8);
    CHECK_NEAR(s.sink, inv / rows, 1.5e-8);
    CHECK_NEAR(s.prev_token, inv / rows, 1.5e-8);
    CHECK_NEAR(s.distance, dist / rows, 1.5e-7);
}

TEST_CASE("head stats: a sink pattern has sink mass 1 and distance i") {
    const int64_t T = 20;
    Pattern p = Pattern::sink(T);
    const HeadScores s = score_text(p, distinct_ids(T, 0), T);
    CHECK(s.sink == 1.0);
    CHECK(s.entropy == 0.0);
    CHECK_NEAR(s.distance, double(T) / 2, 1e-14);  // mean of 1..T-1; exact weights: measured 0
    CHECK_NEAR(s.prev_token, 1.0 / double(T - 1), 1e-14);
}

TEST_CASE("head stats: duplicate-token score is 1 for a head on earlier copies, exact fraction for uniform rows") {
    //                                 0  1  2  3  4  5  6  7  8  9
    const std::vector<int32_t> ids = {7, 8, 9, 7, 5, 8, 7, 1, 2, 9};
    const TokenWindow w(ids);
    CHECK(w.prev_same == std::vector<int64_t>{-1, -1, -1, 0, -1, 1, 3, -1, -1, 2});
    const int64_t T = int64_t(ids.size());
    Pattern dup(T);  // weight split over every earlier copy, else on itself
    for (int64_t i = 0; i < T; ++i) {
        std::vector<int64_t> copies;
        for (int64_t j = 0; j < i; ++j)
            if (ids[size_t(j)] == ids[size_t(i)]) copies.push_back(j);
        if (copies.empty()) dup.row(i)[i] = 1;
        for (int64_t j : copies) dup.row(i)[j] = 1.f / float(copies.size());
    }
    CHECK_NEAR(score_text(dup, ids, 3).dup_token, 1.0, 1e-7);  // weights 1/k in float: measured 0
    // Uniform rows: rows 3, 5, 6, 9 have 1, 1, 2, 1 earlier copies among 4, 6, 7, 10 keys.
    Pattern uni = Pattern::uniform(T);
    const double expected = (1.0 / 4 + 1.0 / 6 + 2.0 / 7 + 1.0 / 10) / 4;
    CHECK_NEAR(score_text(uni, ids, T).dup_token, expected, 4e-8);  // measured 4.0e-9
    // A previous-token head never looks at a copy here.
    Pattern prev = Pattern::previous_token(T);
    CHECK(score_text(prev, ids, T).dup_token == 0.0);
}

TEST_CASE("head stats: a pure induction pattern scores 1 on BOS + r + r; previous-token and uniform heads score less") {
    const int64_t R = 12;
    std::vector<int32_t> allowed = distinct_ids(50, 1);
    const auto seqs = make_induction_sequences(allowed, 0, R, 3, 42);
    REQUIRE(seqs.size() == 3);
    const std::vector<int32_t>& ids = seqs[0];
    const int64_t T = 2 * R + 1;
    REQUIRE(int64_t(ids.size()) == T);
    CHECK(ids[0] == 0);
    for (int64_t k = 0; k < R; ++k) CHECK(ids[size_t(1 + k)] == ids[size_t(1 + R + k)]);
    CHECK(std::set<int32_t>(ids.begin() + 1, ids.begin() + 1 + R).size() == size_t(R));  // distinct
    CHECK(seqs[0] != seqs[1]);
    CHECK(make_induction_sequences(allowed, 0, R, 3, 42) == seqs);  // seeded

    Pattern ind(T);  // repeat rows attend to the token after the earlier occurrence; others to BOS
    for (int64_t i = 0; i < T; ++i) {
        if (i > R) ind.row(i)[i - R + 1] = 1;
        else ind.row(i)[0] = 1;
    }
    const TokenWindow w(ids);
    auto induction = [&](Pattern& p) {
        HeadStatsAccumulator acc(1, 1);
        acc.add_induction(0, 0, p.row(0), T, 0, 5, w);  // two batches
        acc.add_induction(0, 0, p.row(5), T, 5, T - 5, w);
        CHECK(acc.induction_rows() == R);
        return acc.scores(0, 0).induction;
    };
    CHECK(induction(ind) == 1.0);
    Pattern prev = Pattern::previous_token(T);
    CHECK(induction(prev) == 0.0);
    // Uniform rows: row i = R+1+k puts 1/(i+1) on the target.
    Pattern uni = Pattern::uniform(T);
    double expected = 0;
    for (int64_t i = R + 1; i < T; ++i) expected += 1.0 / double(i + 1);
    CHECK_NEAR(induction(uni), expected / double(R), 1e-8);  // measured 9.4e-10

    CHECK_THROWS_WITH(make_induction_sequences(distinct_ids(5, 1), 0, 6, 1, 1), doctest::Contains("distinct tokens"));
}

TEST_CASE("head stats: JS similarity is 0 for identical heads and ln 2 where rows are disjoint") {
    const int64_t T = 30;
    Pattern prev = Pattern::previous_token(T), prev2 = Pattern::previous_token(T), sink = Pattern::sink(T);
    HeadSimilarity sim(3);
    const auto positions = sample_positions(T, 8);
    REQUIRE(positions.size() == 8);
    CHECK(positions.front() == 1);
    CHECK(positions.back() == T - 1);
    sim.begin_window(positions);
    sim.add_rows(0, prev.row(0), T, 0, T);
    sim.add_rows(1, prev2.row(0), T, 0, 10);  // in two batches
    sim.add_rows(1, prev2.row(10), T, 10, T - 10);
    sim.add_rows(2, sink.row(0), T, 0, T);
    sim.end_window();
    const auto m = sim.matrix();
    CHECK_NEAR(m[0 * 3 + 1], 0.0, 1e-14);  // one-hot rows, double arithmetic: measured 0 (both)
    // Row 1: previous token = first token, identical rows; every later row disjoint.
    const double expected = std::log(2.0) * double(positions.size() - 1) / double(positions.size());
    CHECK_NEAR(m[0 * 3 + 2], expected, 1e-14);
    CHECK(m[2 * 3 + 0] == m[0 * 3 + 2]);
    CHECK(m[1 * 3 + 1] == 0.0);
    CHECK(sim.rows_compared() == 8);
    CHECK(sample_positions(3, 10) == std::vector<int64_t>{1, 2});
    CHECK(sample_positions(1, 10).empty());
}
