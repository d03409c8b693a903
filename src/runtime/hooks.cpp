#include "runtime/hooks.h"

namespace minigpt {

std::string hook_name(Hook h, int layer) {
    const std::string b = "blocks." + std::to_string(layer) + ".";
    switch (h) {
        case Hook::ResidPre: return b + "hook_resid_pre";
        case Hook::Q: return b + "attn.hook_q";
        case Hook::K: return b + "attn.hook_k";
        case Hook::V: return b + "attn.hook_v";
        case Hook::AttnScores: return b + "attn.hook_attn_scores";
        case Hook::Pattern: return b + "attn.hook_pattern";
        case Hook::Z: return b + "attn.hook_z";
        case Hook::AttnOut: return b + "hook_attn_out";
        case Hook::ResidMid: return b + "hook_resid_mid";
        case Hook::MlpPre: return b + "mlp.hook_pre";
        case Hook::MlpPost: return b + "mlp.hook_post";
        case Hook::MlpOut: return b + "hook_mlp_out";
        case Hook::ResidPost: return b + "hook_resid_post";
        case Hook::LnFinal: return "ln_final.hook_normalized";
        case Hook::Logits: return "logits";
        case Hook::Count: break;
    }
    return "?";
}

}  // namespace minigpt
