// Per-head attention statistics, computed from hook_pattern rows as the model
// runs (nothing is stored beyond the rows the similarity matrix samples).
//
// Definitions (row i is the attention of query position i over keys 0..i; the
// text statistics average over query positions i >= 1 of every window, since
// position 0 can only attend to itself):
//   entropy      -sum_j p_ij ln p_ij (nats); a uniform row over n keys gives ln n
//   distance     sum_j p_ij (i - j): how far back the head looks, in tokens
//   sink         p_i0: weight on the first token of the window
//   prev_token   p_i,i-1: TransformerLens's previous-token detection pattern
//   dup_token    sum of p_ij over earlier j with the same token id
//                (TransformerLens's duplicate-token detection pattern)
//   induction    on BOS + r + r (r: R distinct random tokens): sum of p_ij over
//                j = k + 1 for earlier k with the same token as i
//                (TransformerLens's induction detection pattern), i.e. the
//                weight from each position of the repeat onto the token after
//                its earlier occurrence (Olsson et al. 2022, ARENA)
// TransformerLens scores a detection pattern D as sum(A*D)/sum(A) ("mul"),
// dividing by every row; here each score is divided by the number of rows D
// covers (rows with an earlier duplicate, the R rows of the repeat), so a head
// that follows the pattern perfectly scores exactly 1.
//   similarity   for two heads, the mean over sampled query rows of the
//                Jensen-Shannon divergence of their rows (Clark et al. 2019),
//                JSD(P,Q) = (KL(P||M) + KL(Q||M)) / 2, M = (P+Q)/2, in nats
//                (0 for identical rows, at most ln 2 for disjoint ones).
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "runtime/hooks.h"
#include "runtime/model.h"

namespace minigpt {

// One row's quantities (p: weights over keys 0..len-1).
double row_entropy(const float* p, int64_t len);
double row_distance(const float* p, int64_t len);  // query position = len - 1
double js_divergence(const float* p, const float* q, int64_t len);

// A sequence's ids with, for each position, the previous position holding the
// same id (-1 if none): the earlier occurrences the duplicate-token and
// induction patterns look for, found by walking the chain.
struct TokenWindow {
    std::vector<int32_t> ids;
    std::vector<int64_t> prev_same;
    explicit TokenWindow(std::vector<int32_t> window_ids);
};

struct HeadScores {
    double entropy = 0, distance = 0, sink = 0, prev_token = 0, dup_token = 0, induction = 0;
};

// Sums and row counts per head; scores() divides them.
class HeadStatsAccumulator {
public:
    HeadStatsAccumulator(int64_t n_layer, int64_t n_head);

    // Rows of one head for query positions pos0..pos0+n-1 of window w (row i
    // `ld` floats apart, keys 0..pos0+i): entropy, distance, sink, previous-
    // and duplicate-token sums.
    void add_text(int64_t layer, int64_t head, const float* rows, int64_t ld, int64_t pos0, int64_t n, const TokenWindow& w);
    // The same rows of a repeated random sequence: the induction sums.
    void add_induction(int64_t layer, int64_t head, const float* rows, int64_t ld, int64_t pos0, int64_t n,
                       const TokenWindow& w);

    HeadScores scores(int64_t layer, int64_t head) const;
    int64_t n_layer() const { return n_layer_; }
    int64_t n_head() const { return n_head_; }
    int64_t text_rows() const { return !sums_.empty() ? sums_[0].rows : 0; }  // query rows per head (i >= 1)
    int64_t dup_rows() const { return !sums_.empty() ? sums_[0].dup_rows : 0; }
    int64_t induction_rows() const { return !sums_.empty() ? sums_[0].ind_rows : 0; }

private:
    struct Sums {
        double entropy = 0, distance = 0, sink = 0, prev = 0, dup = 0, ind = 0;
        int64_t rows = 0, dup_rows = 0, ind_rows = 0;
    };
    int64_t n_layer_, n_head_;
    std::vector<Sums> sums_;
};

// Mean JS divergence between every pair of heads over sampled query rows.
class HeadSimilarity {
public:
    explicit HeadSimilarity(int64_t n_heads_total);

    // The query positions (each >= 1, < T) whose rows this window compares.
    void begin_window(std::vector<int64_t> positions);
    // Rows of head k (= layer * n_head + head) for positions pos0..pos0+n-1.
    void add_rows(int64_t k, const float* rows, int64_t ld, int64_t pos0, int64_t n);
    void end_window();  // adds the window's pairwise divergences to the sums

    // (K, K) mean divergence, symmetric, diagonal 0; all zero before any row.
    std::vector<double> matrix() const;
    int64_t rows_compared() const { return rows_; }

private:
    int64_t k_;
    std::vector<int64_t> positions_;
    std::vector<std::vector<float>> kept_;  // per head: the sampled rows, each padded to the longest
    int64_t stride_ = 0;
    std::vector<double> sums_;  // (K, K), upper triangle used
    int64_t rows_ = 0;
};

// Evenly spaced query positions in [1, T-1], at most m of them.
std::vector<int64_t> sample_positions(int64_t T, int64_t m);

// BOS followed by R distinct tokens drawn from `allowed` (seeded), repeated:
// length 2R+1. One sequence per seed offset 0..count-1.
std::vector<std::vector<int32_t>> make_induction_sequences(const std::vector<int32_t>& allowed, int32_t bos, int64_t R,
                                                           int64_t count, uint64_t seed);

struct HeadStatsOptions {
    int64_t sim_rows = 32;  // query rows per window compared for the similarity matrix (0: none)
    int n_threads = 1;
};

struct HeadStatsReport {
    int64_t n_layer = 0, n_head = 0;
    std::vector<HeadScores> heads;   // index layer * n_head + head
    std::vector<double> similarity;  // (K, K), K = n_layer * n_head
    int64_t text_rows = 0, dup_rows = 0, induction_rows = 0, similarity_rows = 0;
};

// Runs the model over the text windows and the induction sequences, each from
// an empty cache, collecting every statistic. progress(done, total) is called
// after each sequence.
HeadStatsReport run_head_stats(const Model& model, const std::vector<std::vector<int32_t>>& text_windows,
                               const std::vector<std::vector<int32_t>>& induction_sequences,
                               const HeadStatsOptions& opt,
                               const std::function<void(int64_t, int64_t)>& progress = nullptr);

}  // namespace minigpt
