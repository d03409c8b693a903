// Activation patching: the self-check (every head of every layer patched at
// every position gives back the clean metric exactly when the two sequences
// end in the same token), no patch gives the corrupted metric exactly, the
// per-position runs (which reuse the corrupted cache before the patched
// position) agree with fresh runs, the metric, and the input checks. The
// comparison with a float64 reference is in tests/e2e/test_heads_patch.py.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "analysis/patching.h"
#include "runtime/model.h"
#include "runtime/transformer.h"
#include "tiny_model.h"

using namespace minigpt;
using namespace minigpt::test;

namespace {

std::vector<int32_t> some_ids(int64_t n, uint32_t seed) { return random_ids(n, 96, seed); }

std::vector<HeadRef> every_head(const Config& c, int64_t up_to_layer) {
    std::vector<HeadRef> heads;
    for (int64_t l = 0; l <= up_to_layer; ++l)
        for (int64_t h = 0; h < c.n_head; ++h) heads.push_back(HeadRef{int(l), int(h)});
    return heads;
}

// The corrupted sequence: the clean one with two tokens before the last changed.
std::pair<std::vector<int32_t>, std::vector<int32_t>> pair_of_sequences(int64_t n, uint32_t seed) {
    auto clean = some_ids(n, seed), corrupt = clean;
    corrupt[2] = (corrupt[2] + 17) % 96;
    corrupt[size_t(n - 3)] = (corrupt[size_t(n - 3)] + 5) % 96;
    return {clean, corrupt};
}

}  // namespace

TEST_CASE("patching: every head of every layer patched gives back the clean metric exactly; none gives the corrupted") {
    TempPath path("patch_self.gguf");
    auto model = load_tiny_gpt2(path.path, DType::F32, 23);
    const Config& c = model->config();
    const auto [clean, corrupt] = pair_of_sequences(14, 8);
    for (const PatchMetric metric : {PatchMetric{7, -1}, PatchMetric{7, 50}}) {
        PatchingOptions opt;
        const PatchingReport r = run_patching(*model, clean, corrupt, metric, opt);
        CHECK(std::fabs(r.clean - r.corrupted) > 1e-3);  // the corruption must matter
        // The last position differs from the clean run only through z: with
        // every z restored its arithmetic repeats the clean run's exactly.
        CHECK(patched_metric(*model, clean, corrupt, metric, every_head(c, c.n_layer - 1)) == r.clean);
        CHECK(patched_metric(*model, clean, corrupt, metric, {}) == r.corrupted);
        // The last layer alone, with the earlier ones not patched, does not.
        std::vector<HeadRef> last;
        for (int64_t h = 0; h < c.n_head; ++h) last.push_back(HeadRef{int(c.n_layer - 1), int(h)});
        CHECK(patched_metric(*model, clean, corrupt, metric, last) != r.clean);
        // Each single-head patch from run_patching equals a fresh run's.
        for (int64_t k = 0; k < c.n_layer * c.n_head; ++k) {
            const HeadRef h{int(k / c.n_head), int(k % c.n_head)};
            CHECK(r.patched[size_t(k)] == patched_metric(*model, clean, corrupt, metric, {h}));
        }
    }
}

TEST_CASE("patching: per-position runs reuse the corrupted cache and agree with fresh runs") {
    TempPath path("patch_pos.gguf");
    auto model = load_tiny_gpt2(path.path, DType::F16, 29);
    const Config& c = model->config();
    const auto [clean, corrupt] = pair_of_sequences(9, 9);
    PatchingOptions opt;
    opt.per_position = true;
    int64_t calls = 0, last_total = 0;
    const PatchingReport r = run_patching(*model, clean, corrupt, PatchMetric{3, 4}, opt, [&](int64_t done, int64_t total) {
        ++calls;
        last_total = total;
        CHECK(done == calls);
    });
    const int64_t K = c.n_layer * c.n_head, T = 9;
    CHECK(calls == 2 + K + K * T);
    CHECK(last_total == calls);
    REQUIRE(r.patched_pos.size() == size_t(T * K));
    double worst = 0;
    for (int64_t p = 0; p < T; ++p)
        for (int64_t k = 0; k < K; ++k) {
            const double fresh = patched_metric(*model, clean, corrupt, PatchMetric{3, 4}, {HeadRef{int(k / c.n_head), int(k % c.n_head)}}, p);
            worst = std::max(worst, std::fabs(r.patched_pos[size_t(p * K + k)] - fresh));
        }
    // Measured 0 to ~1e-6: only the batch layout of the rerun positions differs.
    MESSAGE("max |per-position (cached prefix) - fresh run| = " << worst);
    CHECK(worst < 1e-5);
    // Where the sequences agree (positions 0, 1) patching a head changes
    // nothing but its own z, which is equal in both runs.
    for (int64_t k = 0; k < K; ++k) {
        CHECK(std::fabs(r.patched_pos[size_t(0 * K + k)] - r.corrupted) < 1e-5);
        CHECK(std::fabs(r.patched_pos[size_t(1 * K + k)] - r.corrupted) < 1e-5);
    }
    CHECK(r.restored(r.clean) == 1.0);
    CHECK(r.restored(r.corrupted) == 0.0);
}

TEST_CASE("patching: a list of heads patches only those; the others are NaN") {
    TempPath path("patch_subset.gguf");
    auto model = load_tiny_gpt2(path.path, DType::F32, 37);
    const auto [clean, corrupt] = pair_of_sequences(8, 10);
    PatchingOptions all, some;
    all.per_position = some.per_position = true;
    some.heads = {HeadRef{1, 2}, HeadRef{0, 3}};
    const PatchingReport a = run_patching(*model, clean, corrupt, PatchMetric{5, -1}, all);
    const PatchingReport b = run_patching(*model, clean, corrupt, PatchMetric{5, -1}, some);
    for (size_t k = 0; k < a.patched.size(); ++k) {
        const bool listed = k == 6 || k == 3;
        CHECK(std::isnan(b.patched[k]) == !listed);
        if (listed) CHECK(b.patched[k] == a.patched[k]);
        for (int64_t p = 0; p < 8; ++p) CHECK(std::isnan(b.patched_pos[size_t(p * 8) + k]) == !listed);
    }
    some.heads = {HeadRef{2, 0}};
    CHECK_THROWS_WITH(run_patching(*model, clean, corrupt, PatchMetric{5, -1}, some), doctest::Contains("head 2.0 does not exist"));
}

TEST_CASE("patching: the metric is log p(answer) or a logit difference") {
    const std::vector<float> logits{1.f, 2.f, 3.f};
    const double lse = std::log(std::exp(1.0) + std::exp(2.0) + std::exp(3.0));
    CHECK(std::fabs(PatchMetric{1, -1}(logits.data(), 3) - (2.0 - lse)) < 1e-12);
    CHECK(PatchMetric{2, 0}(logits.data(), 3) == 2.0);
}

TEST_CASE("patching: lengths, ids and equal metrics are refused") {
    TempPath path("patch_bad.gguf");
    auto model = load_tiny_gpt2(path.path, DType::F32, 31);
    const auto ids = some_ids(6, 1);
    const std::vector<int32_t> shorter(ids.begin(), ids.end() - 1);
    CHECK_THROWS_WITH(run_patching(*model, ids, shorter, PatchMetric{1, -1}, {}), doctest::Contains("differ in length (6 and 5 tokens)"));
    CHECK_THROWS_WITH(run_patching(*model, {}, {}, PatchMetric{1, -1}, {}), doctest::Contains("no tokens"));
    CHECK_THROWS_WITH(run_patching(*model, ids, ids, PatchMetric{96, -1}, {}), doctest::Contains("outside the vocabulary"));
    CHECK_THROWS_WITH(run_patching(*model, ids, ids, PatchMetric{1, 99}, {}), doctest::Contains("outside the vocabulary"));
    CHECK_THROWS_WITH(run_patching(*model, ids, ids, PatchMetric{1, 2}, {}), doctest::Contains("same metric"));
    const std::vector<int32_t> long_ids(65, 1);
    CHECK_THROWS_WITH(run_patching(*model, long_ids, long_ids, PatchMetric{1, -1}, {}), doctest::Contains("exceed the model's context"));
}
