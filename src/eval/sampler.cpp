#include "eval/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

namespace minigpt {

namespace {

// Descending logit, ties by ascending id: a strict total order, so sorts and
// partial sorts give the same result on every standard library.
bool before(const Candidate& a, const Candidate& b) {
    return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
}

// A threshold computed in float is "reached" within this relative slack.
constexpr double kThresholdSlack = 1e-6;

}  // namespace

void Candidates::reset(const float* logits, int32_t n_vocab) {
    data.resize(size_t(n_vocab));  // no allocation once capacity is there
    for (int32_t i = 0; i < n_vocab; ++i) data[size_t(i)] = Candidate{i, logits[i], 0.f};
    size = size_t(n_vocab);
    sorted = false;
    p_valid = false;
}

void sort_candidates(Candidates& c) {
    if (!c.sorted) {
        std::sort(c.begin(), c.end(), before);
        c.sorted = true;
    }
}

void apply_repetition_penalty(Candidates& c, const int32_t* recent, size_t n_recent, float penalty) {
    if (penalty == 1.0f || n_recent == 0) return;
    for (size_t i = 0; i < n_recent; ++i) {
        const int32_t id = recent[i];
        // llama.cpp penalizes each distinct token once, however often it occurs.
        if (std::find(recent, recent + i, id) != recent + i) continue;
        Candidate* hit = nullptr;
        if (id >= 0 && size_t(id) < c.size && c.data[size_t(id)].id == id) {
            hit = &c.data[size_t(id)];  // still in id order: direct index
        } else {
            for (Candidate& x : c)
                if (x.id == id) {
                    hit = &x;
                    break;
                }
        }
        if (!hit) continue;  // already filtered out
        hit->logit = hit->logit > 0 ? hit->logit / penalty : hit->logit * penalty;
        c.sorted = false;  // the order of logits may have changed
        c.p_valid = false;
    }
}

void apply_top_k(Candidates& c, int32_t k) {
    if (k <= 0 || size_t(k) >= c.size) return;
    std::partial_sort(c.begin(), c.begin() + k, c.end(), before);
    c.size = size_t(k);
    c.sorted = true;
}

void softmax(Candidates& c) {
    if (c.size == 0) throw std::runtime_error("softmax: no candidates left");
    if (!c.p_valid) {
        float max_logit = c.data[0].logit;
        if (!c.sorted)
            for (const Candidate& x : c) max_logit = std::max(max_logit, x.logit);
        for (Candidate& x : c) x.p = std::exp(x.logit - max_logit);
        c.p_valid = true;
    }
    // Renormalize: after a filter removed tokens, the p left are still
    // proportional to exp(logit - max).
    double sum = 0;
    for (const Candidate& x : c) sum += x.p;
    for (Candidate& x : c) x.p = float(x.p / sum);
}

void apply_top_p(Candidates& c, float p) {
    if (p >= 1.0f) return;
    softmax(c);
    const double target = double(p) * (1 - kThresholdSlack);
    // Sort only as long a prefix as needed: the first 128, then 8x longer.
    size_t m = c.sorted ? c.size : std::min<size_t>(c.size, 128);
    for (;;) {
        if (!c.sorted) std::partial_sort(c.begin(), c.begin() + m, c.end(), before);
        double cum = 0;
        for (size_t i = 0; i < m; ++i) {
            cum += c.data[i].p;
            if (cum >= target) {
                c.size = i + 1;
                c.sorted = true;
                return;
            }
        }
        if (m == c.size) {  // rounding kept the sum below p: keep everything
            c.sorted = true;
            return;
        }
        m = std::min(c.size, m * 8);
    }
}

void apply_min_p(Candidates& c, float min_p) {
    if (min_p <= 0.0f) return;
    softmax(c);
    float p_max = c.data[0].p;
    if (!c.sorted)
        for (const Candidate& x : c) p_max = std::max(p_max, x.p);
    const double threshold = double(min_p) * p_max * (1 - kThresholdSlack);
    if (c.sorted) {
        size_t keep = 1;  // the most likely token always stays
        while (keep < c.size && double(c.data[keep].p) >= threshold) ++keep;
        c.size = keep;
        return;
    }
    // Unsorted: keep the survivors, then sort only them.
    Candidate* mid = std::partition(c.begin(), c.end(), [&](const Candidate& x) { return double(x.p) >= threshold; });
    c.size = size_t(mid - c.begin());
    sort_candidates(c);
}

// Top-p then min-p on an unsorted set, as one step that never sorts more than
// min-p's survivors. Both keep a prefix of the sorted order, and min-p's test
// p >= min_p * p_max does not change when top-p renormalizes, so the result is
// the shorter of the two prefixes: min-p's survivors, cut where the cumulative
// probability (normalized over the set before top-p) reaches top_p.
void apply_top_p_min_p_unsorted(Candidates& c, float top_p, float min_p) {
    softmax(c);
    float p_max = 0;
    for (const Candidate& x : c) p_max = std::max(p_max, x.p);
    const double threshold = double(min_p) * p_max * (1 - kThresholdSlack);
    Candidate* mid = std::partition(c.begin(), c.end(), [&](const Candidate& x) { return double(x.p) >= threshold; });
    c.size = size_t(mid - c.begin());
    sort_candidates(c);
    const double target = double(top_p) * (1 - kThresholdSlack);
    double cum = 0;
    for (size_t i = 0; i < c.size; ++i) {
        cum += c.data[i].p;
        if (cum >= target) {
            c.size = i + 1;
            return;
        }
    }
}

void apply_temperature(Candidates& c, float temp) {
    if (c.size == 0) throw std::runtime_error("temperature: no candidates left");
    if (temp <= 0.0f) {
        const Candidate* best = std::min_element(c.begin(), c.end(), before);  // "smallest" = first in order
        c.data[0] = *best;
        c.size = 1;
        c.sorted = true;
        c.p_valid = false;
        return;
    }
    for (Candidate& x : c) x.logit /= temp;  // order unchanged for temp > 0
    c.p_valid = false;
}

size_t draw_index(const Candidates& c, Rng& rng) {
    const double u = rng.uniform();
    double cum = 0;
    for (size_t i = 0; i < c.size; ++i) {
        cum += c.data[i].p;
        if (u < cum) return i;
    }
    // Rounding left the sum just below u: the last token with p > 0.
    size_t last = c.size - 1;
    while (last > 0 && c.data[last].p == 0.0f) --last;
    return last;
}

float full_softmax_probability(const float* logits, int32_t n, int32_t id) {
    const float max_logit = *std::max_element(logits, logits + n);
    double sum = 0;
    for (int32_t i = 0; i < n; ++i) sum += std::exp(double(logits[i]) - max_logit);
    return float(std::exp(double(logits[id]) - max_logit) / sum);
}

Sampler::Sampler(const SamplerParams& params, int32_t n_vocab) : params_(params), n_vocab_(n_vocab), rng_(params.seed) {
    if (n_vocab <= 0) throw std::runtime_error("sampler: vocabulary size must be positive");
    if (!(params.top_p > 0.0f && params.top_p <= 1.0f))
        throw std::runtime_error("sampler: top-p must lie in (0, 1], got " + std::to_string(params.top_p));
    if (!(params.min_p >= 0.0f && params.min_p <= 1.0f))
        throw std::runtime_error("sampler: min-p must lie in [0, 1], got " + std::to_string(params.min_p));
    if (!(params.temp >= 0.0f)) throw std::runtime_error("sampler: temperature must be >= 0");
    if (!(params.repeat_penalty > 0.0f)) throw std::runtime_error("sampler: repeat penalty must be > 0");
    cand_.data.reserve(size_t(n_vocab));
}

int32_t Sampler::sample(const float* logits, const int32_t* history, size_t n_history) {
    const bool penalized = params_.repeat_last_n != 0 && params_.repeat_penalty != 1.0f && n_history > 0;
    if (params_.temp <= 0.0f && !penalized && n_vocab_ > 0) {
        // Greedy with nothing to change the logits but the ban: the first candidate in
        // the chain's order (larger logit, then smaller id) found in one pass, without
        // filling the 50 257 candidates first (~60 us of a 2.5 ms token).
        const bool banned = params_.ban_token >= 0 && params_.ban_token < n_vocab_;
        auto at = [&](int32_t i) {
            return Candidate{i, banned && i == params_.ban_token ? -std::numeric_limits<float>::infinity() : logits[i], 0.f};
        };
        Candidate best = at(0);
        for (int32_t i = 1; i < n_vocab_; ++i)
            if (const Candidate c = at(i); before(c, best)) best = c;
        best.p = 1.0f;
        cand_.data.resize(std::max<size_t>(cand_.data.size(), 1));
        cand_.data[0] = best;
        cand_.size = 1;
        cand_.sorted = true;
        cand_.p_valid = false;
        chosen_p_ = 1.0f;
        chosen_model_p_ = params_.model_probability ? full_softmax_probability(logits, n_vocab_, best.id) : 0.0f;
        return best.id;
    }
    cand_.reset(logits, n_vocab_);
    if (params_.ban_token >= 0 && params_.ban_token < n_vocab_)
        cand_.data[size_t(params_.ban_token)].logit = -std::numeric_limits<float>::infinity();
    if (params_.repeat_last_n != 0) {
        // repeat_last_n < 0: the whole history (llama.cpp's -1 = context size).
        const size_t n = params_.repeat_last_n < 0 ? n_history : std::min(n_history, size_t(params_.repeat_last_n));
        apply_repetition_penalty(cand_, history + (n_history - n), n, params_.repeat_penalty);
    }
    int32_t chosen;
    if (params_.temp <= 0.0f) {
        apply_temperature(cand_, 0.0f);
        cand_.data[0].p = 1.0f;
        chosen = cand_.data[0].id;
        chosen_p_ = 1.0f;
    } else {
        apply_top_k(cand_, params_.top_k);
        if (!cand_.sorted && params_.top_p < 1.0f && params_.min_p > 0.0f) {
            apply_top_p_min_p_unsorted(cand_, params_.top_p, params_.min_p);
        } else {
            apply_top_p(cand_, params_.top_p);
            apply_min_p(cand_, params_.min_p);
        }
        apply_temperature(cand_, params_.temp);
        softmax(cand_);
        const size_t i = draw_index(cand_, rng_);
        chosen = cand_.data[i].id;
        chosen_p_ = cand_.data[i].p;
    }
    chosen_model_p_ = params_.model_probability ? full_softmax_probability(logits, n_vocab_, chosen) : 0.0f;
    return chosen;
}

}  // namespace minigpt
