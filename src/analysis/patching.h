// Activation patching per head (TransformerLens's convention, as in its
// get_act_patch_attn_head_out_* functions, on hook_z).
//
// A clean and a corrupted token sequence of the same length are run; then, for
// each head, the corrupted run is repeated with that head's z (its weighted
// values, before the output projection) replaced by the clean run's, at every
// position or at one position, and a metric of the last position's logits is
// read:
//
//   metric = log p(answer)                       (no wrong token)
//          = logit(answer) - logit(wrong)        (with a wrong token)
//   restored = (patched - corrupted) / (clean - corrupted)
//
// 1 = the head alone carries the clean behaviour back, 0 = no effect.
// Patching every head of every layer at every position gives back the clean
// metric exactly when the two sequences end in the same token: the last
// position then differs from the clean run only through attention (z).
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

#include "analysis/ablation.h"
#include "runtime/hooks.h"
#include "runtime/model.h"

namespace minigpt {

struct PatchMetric {
    int32_t answer = -1;
    int32_t wrong = -1;  // -1: the log-probability of answer
    // The metric of one position's logits (n_vocab floats), in double.
    double operator()(const float* logits, int64_t n_vocab) const;
};

// Keeps hook_z of every layer at every position of one run: (n_layer, T, d).
class ZRecorder : public ForwardHooks {
public:
    ZRecorder(const Config& cfg, int64_t n_pos);
    uint32_t wanted() const override { return hook_bit(Hook::Z); }
    void on(const HookView& view) override;
    // Head h's z at position pos of layer l: head_dim floats.
    const float* z(int64_t layer, int64_t pos, int64_t head) const {
        return z_.data() + (layer * n_pos_ + pos) * d_ + head * hd_;
    }
    int64_t n_pos() const { return n_pos_; }

private:
    int64_t d_, hd_, n_pos_;
    std::vector<float> z_;
};

// Replaces the chosen heads' z by a recorded run's, at every position
// (pos = -1) or at one position.
class ZPatch : public ForwardHooks {
public:
    ZPatch(const Config& cfg, const ZRecorder& source);
    void set(const std::vector<HeadRef>& heads, int64_t pos = -1);
    uint32_t wanted() const override { return hook_bit(Hook::Z); }
    void on(const HookView& view) override;

private:
    int64_t hd_, n_head_;
    const ZRecorder& src_;
    std::vector<std::vector<int>> by_layer_;
    int64_t pos_ = -1;
};

struct PatchingOptions {
    bool per_position = false;  // also patch each head at each position alone
    std::vector<HeadRef> heads;  // the heads to patch one by one; empty: every head
    int n_threads = 1;
};

struct PatchingReport {
    int64_t n_layer = 0, n_head = 0, n_pos = 0;
    double clean = 0, corrupted = 0;   // the metric of the two unpatched runs
    std::vector<double> patched;       // (n_layer * n_head): head patched at every position (NaN: not patched)
    std::vector<double> patched_pos;   // (n_pos, n_layer * n_head) with per_position, else empty
    double restored(double metric) const { return (metric - corrupted) / (clean - corrupted); }
};

// Checks the two sequences (same non-zero length, within the context) and
// runs every patch. progress(done, total) after each run. Throws if the clean
// and corrupted metrics are equal (restored would be 0 / 0).
PatchingReport run_patching(const Model& model, const std::vector<int32_t>& clean, const std::vector<int32_t>& corrupt,
                            const PatchMetric& metric, const PatchingOptions& opt,
                            const std::function<void(int64_t, int64_t)>& progress = nullptr);

// The metric of the corrupted run with `heads` patched from the clean run at
// pos (-1: every position), from fresh runs: the tests' and self-check's way
// to patch any set of heads at once.
double patched_metric(const Model& model, const std::vector<int32_t>& clean, const std::vector<int32_t>& corrupt,
                      const PatchMetric& metric, const std::vector<HeadRef>& heads, int64_t pos = -1,
                      int n_threads = 1);

}  // namespace minigpt
