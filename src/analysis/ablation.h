// Head ablation as a ForwardHooks on blocks.L.attn.hook_z: the chosen heads'
// weighted values are replaced before the output projection, so they add
// nothing (zero mode, Hugging Face's head_mask semantics) or only their
// average contribution (mean mode: the head's mean z over the positions of an
// unablated run on a reference text) to the residual stream.
//
// Heads are written L.H on the command line (layer and head from 0) and
// L{l}H{h} in tables; "L.*" means every head of layer L.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "runtime/hooks.h"
#include "runtime/model.h"

namespace minigpt {

struct HeadRef {
    int layer = 0;
    int head = 0;
    bool operator==(const HeadRef& o) const { return layer == o.layer && head == o.head; }
};

std::string head_label(HeadRef h);  // "L3H7"
std::string head_arg(HeadRef h);    // "3.7"

// "0.3,2.*,5.1" -> heads in the order given, duplicates dropped. Throws naming
// `option` and the offending item (bad syntax, layer or head out of range).
std::vector<HeadRef> parse_head_list(const std::string& spec, int64_t n_layer, int64_t n_head,
                                     const std::string& option = "--ablate");

enum class AblationMode { Zero, Mean };
AblationMode parse_ablation_mode(const std::string& s);  // "zero" or "mean"; throws otherwise
const char* ablation_mode_name(AblationMode m);

// Mean z of every head over every position of `windows` (each run from an empty
// cache, without ablation). Returns (n_layer, n_embd): head h of layer l at
// [l * n_embd + h * head_dim, + head_dim).
std::vector<float> mean_head_outputs(const Model& model, const std::vector<std::vector<int32_t>>& windows,
                                     int n_threads = 1);

class HeadAblation : public ForwardHooks {
public:
    // means: (n_layer, n_embd) from mean_head_outputs, required for Mean mode.
    HeadAblation(const Config& cfg, AblationMode mode, std::vector<float> means = {});

    void set_heads(const std::vector<HeadRef>& heads);  // replaces the ablated set
    const std::vector<HeadRef>& heads() const { return heads_; }
    AblationMode mode() const { return mode_; }

    uint32_t wanted() const override { return hook_bit(Hook::Z); }
    void on(const HookView& view) override;

private:
    int64_t n_layer_, n_embd_, head_dim_;
    AblationMode mode_;
    std::vector<float> means_;
    std::vector<HeadRef> heads_;
    std::vector<std::vector<int>> by_layer_;  // heads to ablate, per layer
};

}  // namespace minigpt
