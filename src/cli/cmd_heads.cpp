// minigpt heads: attention heads under the microscope.
//   heads stats       per-head attention statistics over a text (+ induction, similarity)
//   heads importance  perplexity with each head ablated, and the pruning curve
//   heads logits      an alias of `minigpt logits` (cmd_logits.cpp): logits of token ids
//                     with heads ablated, optional attention export
#include <cstdio>
#include <cstring>
#include <string>

#include "cli/commands.h"
#include "cli/dispatch.h"

namespace minigpt::cli {

int heads_stats(int argc, char** argv);       // cmd_heads_stats.cpp
int heads_importance(int argc, char** argv);  // cmd_heads_importance.cpp
int heads_logits(int argc, char** argv);      // cmd_logits.cpp: the same as `minigpt logits`
int heads_dla(int argc, char** argv);         // cmd_heads_dla.cpp
int heads_patch(int argc, char** argv);       // cmd_heads_patch.cpp
int heads_grad(int argc, char** argv);        // cmd_heads_grad.cpp
int heads_circuits(int argc, char** argv);    // cmd_heads_circuits.cpp
int heads_group_kv(int argc, char** argv);    // cmd_heads_group_kv.cpp
int heads_cost(int argc, char** argv);        // cmd_heads_cost.cpp

namespace {

struct Sub {
    const char* name;
    int (*run)(int, char**);
    const char* summary;
};

const Sub kSubs[] = {
    {"stats", heads_stats, "per-head entropy, distance, sink, previous-token, duplicate-token, induction scores; head similarity"},
    {"importance", heads_importance, "perplexity with each head ablated alone, then the pruning curve"},
    {"grad", heads_grad, "gradient head importance: dLoss/d(head mask) by one backward pass per window"},
    {"cost", heads_cost, "what more heads cost at a fixed width: tokens/s, attention share, KV and capture bytes"},
    {"group-kv", heads_group_kv, "a GGUF with grouped key/value heads (GQA, MQA) by mean-pooling each group's K and V"},
    {"circuits", heads_circuits, "Q/K/V composition scores between heads of different layers, OV copying scores"},
    {"dla", heads_dla, "direct logit attribution: each head's (and MLP's, embedding's) share of one prediction's logit"},
    {"patch", heads_patch, "activation patching: how much each head's clean z restores a corrupted run's answer"},
    {"logits", heads_logits, "= minigpt logits: logits of token ids with heads ablated (--ablate), attention export"},
};

void usage(FILE* out) {
    std::fprintf(out, "usage: minigpt heads SUBCOMMAND [options]   (minigpt heads SUBCOMMAND --help)\n\n"
                      "Heads are written L.H (layer and head from 0; L.* = every head of layer L) and L{l}H{h} in tables.\n\n"
                      "subcommands:\n");
    for (const Sub& s : kSubs) std::fprintf(out, "  %-11s %s\n", s.name, s.summary);
}

}  // namespace

int cmd_heads(int argc, char** argv) {
    return dispatch(argc, argv, argv[0], "subcommand", kSubs, usage,
                    [](const Sub& s, int n, char** args) { return s.run(n, args); });
}

}  // namespace minigpt::cli

namespace {
minigpt::cli::RegisterCommand reg{"heads", minigpt::cli::cmd_heads,
                                  "attention heads: statistics, importance by ablation, ablated logits", 40};
}
