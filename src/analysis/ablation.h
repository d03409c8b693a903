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
#include <memory>
#include <string>
#include <vector>

#include "runtime/hooks.h"
#include "runtime/model.h"
#include "tokenizer/tokenizer.h"

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

// ---------------------------------------------------------------- from the command line
// One way for every command that ablates (generate, perplexity, logits, heads
// importance) to turn --ablate, --ablate-mode and --mean-file into the hook:
//
//   AblationRequest req{"0.1,3.*", AblationMode::Mean, "ref.txt"};
//   const auto heads = ablation_heads(req, model.config());   // check before any work
//   std::unique_ptr<HeadAblation> hook = ablation_from_options(model, req, own_windows, window, n_threads);
//   if (hook) tf.set_hooks(hook.get());

struct AblationRequest {
    std::string heads;                       // --ablate: "L.H,L.*,..." ("" = none)
    AblationMode mode = AblationMode::Zero;  // --ablate-mode
    std::string mean_file;                   // --mean-file: mean mode's reference text ("" = the command's own)
};

// The heads of request.heads checked against the model (an empty list when
// none); throws naming --ablate, or --mean-file when it is given without
// --ablate and --ablate-mode mean.
std::vector<HeadRef> ablation_heads(const AblationRequest& request, const Config& cfg);

// Mean z of every head (as mean_head_outputs) over the reference of mean
// mode: the text of mean_file through the model's tokenizer (BOS first in each
// window when the tokenizer adds one; `tokenizer` may be null: the model's is
// made) in windows of `window` tokens, or, without a file, `own` (the
// command's own windows: the prompt, the scored text).
std::vector<float> ablation_means(const Model& model, const std::string& mean_file,
                                  const std::vector<std::vector<int32_t>>& own, int64_t window, int n_threads,
                                  const Tokenizer* tokenizer = nullptr);

// The hook for a request, or null when it names no head.
std::unique_ptr<HeadAblation> ablation_from_options(const Model& model, const AblationRequest& request,
                                                    const std::vector<std::vector<int32_t>>& own, int64_t window,
                                                    int n_threads, const Tokenizer* tokenizer = nullptr);

}  // namespace minigpt
