// Observation and intervention points of the forward pass.
//
// Every named intermediate of a block can be seen (and changed in place) by a
// ForwardHooks object attached to the Transformer. The points and their names
// follow TransformerLens, so notebooks' vocabulary carries over:
//   blocks.L.hook_resid_pre, blocks.L.attn.hook_q / hook_k / hook_v,
//   blocks.L.attn.hook_attn_scores (before softmax, causal mask = -inf),
//   blocks.L.attn.hook_pattern (after softmax), blocks.L.attn.hook_z (each head's
//   weighted values, before the output projection), blocks.L.hook_attn_out,
//   blocks.L.hook_resid_mid, blocks.L.mlp.hook_pre / hook_post, blocks.L.hook_mlp_out,
//   blocks.L.hook_resid_post, ln_final.hook_normalized, logits.
// Cost when unused: one test of a bitmask per point per layer; the plain path
// does no extra work and no copy.
#pragma once
#include <cstdint>
#include <string>

namespace minigpt {

enum class Hook : uint8_t {
    ResidPre,     // (n, d) residual stream entering block L
    Q,            // (n, d) queries, heads concatenated (head h at columns h*hd..)
    K,            // (n, d) keys of the new positions
    V,            // (n, d) values of the new positions
    AttnScores,   // per head: (n, T) q·k/sqrt(hd), masked entries -inf
    Pattern,      // per head: (n, T) softmax of the scores; rows sum to 1
    Z,            // (n, d) each head's weighted values, heads concatenated
    AttnOut,      // (n, d) attention output after the projection and bias
    ResidMid,     // (n, d) residual after attention
    MlpPre,       // (n, n_ff) before GELU
    MlpPost,      // (n, n_ff) after GELU
    MlpOut,       // (n, d) MLP output
    ResidPost,    // (n, d) residual leaving block L
    LnFinal,      // (n_out, d) final LayerNorm output (rows for which logits are computed)
    Logits,       // (n_out, vocab)
    Count
};

constexpr uint32_t hook_bit(Hook h) { return 1u << unsigned(h); }

// "blocks.3.attn.hook_pattern" etc. (layer ignored for ln_final and logits).
std::string hook_name(Hook h, int layer);

// A view of an intermediate: `rows` rows of `cols` floats, `ld` floats apart.
// Row i belongs to position pos0 + i. Writable: hooks may intervene.
struct HookView {
    Hook hook;
    int layer;        // -1 for LnFinal / Logits
    int head;         // head index for AttnScores / Pattern, else -1
    int64_t pos0;     // position of row 0
    int64_t rows, cols, ld;
    float* data;
    float* row(int64_t i) const { return data + i * ld; }
};

class ForwardHooks {
public:
    virtual ~ForwardHooks() = default;
    // Which points this object wants, as a mask of hook_bit(); read once when attached.
    virtual uint32_t wanted() const = 0;
    virtual void on(const HookView& view) = 0;
};

}  // namespace minigpt
