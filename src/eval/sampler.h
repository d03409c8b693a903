// Next-token sampling: a chain of filters over a candidates buffer, in
// llama.cpp's default order (common/sampling: penalties, top-k, top-p, min-p,
// temperature, then a draw from the softmax):
//
//   repetition penalty  every distinct token among the last repeat_last_n ids:
//                       logit > 0 ? logit / penalty : logit * penalty
//   top-k               keep the k largest logits (k <= 0 or k >= n: keep all)
//   top-p               keep the smallest prefix, in descending probability,
//                       whose cumulative probability reaches p (at least 1)
//   min-p               keep tokens with p >= min_p * p_max
//   temperature         logits / T; T = 0 is greedy (argmax)
//
// Top-p and min-p see the probabilities of the candidates still in the set
// (renormalized after top-k) at temperature 1, as in llama.cpp. Ties in logit
// are ordered by ascending id, so results never depend on sort stability; a
// threshold counts as reached when within a relative 1e-6 (float rounding of
// exp/log), so e.g. top-p 0.5 over {0.25, 0.25, ...} keeps exactly two tokens.
//
// Each filter is a free function over Candidates (tested one by one); Sampler
// runs the chain with one buffer reused for every token (no allocation after
// construction) and keeps the final distribution for --json and traces.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "eval/rng.h"

namespace minigpt {

struct SamplerParams {
    float temp = 0.8f;           // 0 = greedy
    int32_t top_k = 40;          // <= 0: off
    float top_p = 0.95f;         // 1: off; must lie in (0, 1]
    float min_p = 0.05f;         // 0: off; must lie in [0, 1]
    float repeat_penalty = 1.0f; // 1: off
    int32_t repeat_last_n = 64;  // ids of history penalized; 0: off
    uint64_t seed = 0;
    bool model_probability = false;  // compute chosen_model_probability() (one more pass over the vocabulary)
    int32_t ban_token = -1;      // never sampled (its logit becomes -inf, as llama.cpp's
                                 // --ignore-eos does with a logit bias); -1: none
};

struct Candidate {
    int32_t id;
    float logit;
    float p;  // probability, valid after softmax()
};

// The set of tokens still in play. `sorted` means data[0..size) is ordered by
// descending logit (ties: ascending id); `p_valid` means every p is
// proportional to exp(logit - c) for the current logits (normalized or not),
// so softmax() only has to renormalize after the set shrank.
struct Candidates {
    std::vector<Candidate> data;
    size_t size = 0;
    bool sorted = false;
    bool p_valid = false;

    void reset(const float* logits, int32_t n_vocab);  // all tokens, reusing capacity
    Candidate* begin() { return data.data(); }
    Candidate* end() { return data.data() + size; }
    const Candidate* begin() const { return data.data(); }
    const Candidate* end() const { return data.data() + size; }
};

// The filters, in chain order. They change logits and/or shrink the set.
void apply_repetition_penalty(Candidates& c, const int32_t* recent, size_t n_recent, float penalty);
void apply_top_k(Candidates& c, int32_t k);
void apply_top_p(Candidates& c, float p);
void apply_min_p(Candidates& c, float min_p);
// apply_top_p then apply_min_p, for an unsorted set, sorting only min-p's survivors.
void apply_top_p_min_p_unsorted(Candidates& c, float top_p, float min_p);
void apply_temperature(Candidates& c, float temp);  // temp <= 0 keeps only the argmax
// Fills p with the softmax of the candidates' logits (max subtracted), without
// sorting: a full sort of the vocabulary is never needed (top-k sorts k, top-p
// sorts only the prefix it keeps, min-p sorts its survivors).
void softmax(Candidates& c);
// Sorts the set if it is not sorted yet.
void sort_candidates(Candidates& c);
// Draws one candidate index by inverse CDF over the probabilities, in the
// order of the buffer, with one uniform from rng. Requires softmax() first.
size_t draw_index(const Candidates& c, Rng& rng);

class Sampler {
public:
    Sampler(const SamplerParams& params, int32_t n_vocab);

    // Picks the next id from raw logits (n_vocab floats); `history` holds every
    // id so far (prompt and generated), of which the last repeat_last_n are
    // penalized. Deterministic given the seed and the sequence of calls.
    int32_t sample(const float* logits, const int32_t* history, size_t n_history);

    // About the last sample():
    // the distribution it was drawn from (p summing to 1; greedy: one token, p = 1);
    // sorted by descending p when any filter ran, in id order when all are off
    const Candidates& final_distribution() const { return cand_; }
    // probability of the chosen token in that distribution
    float chosen_probability() const { return chosen_p_; }
    // probability the model gave the chosen token: softmax over all raw logits
    // at T = 1 (only with params.model_probability; otherwise 0)
    float chosen_model_probability() const { return chosen_model_p_; }

    const SamplerParams& params() const { return params_; }

private:
    SamplerParams params_;
    int32_t n_vocab_;
    Rng rng_;
    Candidates cand_;
    float chosen_p_ = 0.f, chosen_model_p_ = 0.f;
};

// Softmax probability of logits[id] over all n logits (max subtracted, double sums).
float full_softmax_probability(const float* logits, int32_t n, int32_t id);

}  // namespace minigpt
