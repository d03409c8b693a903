// minigpt heads dla: direct logit attribution of one position's prediction to
// every head, the embeddings, the attention biases, the MLPs and the final
// LayerNorm's bias (analysis/dla.h has the decomposition).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>


#include "analysis/dla.h"
#include "analysis/trace.h"
#include "cli/heads_attribution.h"
#include "cli/heads_common.h"
#include "runtime/transformer.h"
#include "util/output_file.h"

namespace minigpt::cli {

namespace {

const char* kDefinition =
    "The residual stream entering the final LayerNorm at a position is a sum of components: embed,\n"
    "pos_embed, each head's write z_h . W_O[h] (L{l}H{h}), each layer's attention output bias\n"
    "(L{l}.attn_bias) and MLP output with its bias (L{l}.mlp). Each component is centred, divided by\n"
    "the final LayerNorm's scale at that position (frozen from the real run), multiplied by the\n"
    "LayerNorm weight and dotted with the target token's unembedding row; the LayerNorm bias's dot\n"
    "product is ln_final_bias. The components sum to the target's logit (to logit A - logit B with\n"
    "--contrast A,B). Tokens: #ID, or one vocabulary entry's exact text as `minigpt tokenize --pieces`\n"
    "prints it (leading space included). docs/heads.md has the formulas.";

struct Setup {
    std::vector<int32_t> ids;  // up to and including the attributed position
    std::string source;
    int64_t pos = 0;
};

// -p TEXT, -f FILE or --ids IDS (exactly one), cut after --pos.
Setup read_text(const Model& model, const Tokenizer& tok, const ParsedFlags& args) {
    const int given = int(has(args, "prompt")) + int(has(args, "file")) + int(has(args, "ids"));
    if (given != 1) usage_error("give the text as -p/--prompt TEXT, -f/--file FILE or --ids \"ID ID ...\" (one of them)");
    Setup s;
    if (has(args, "prompt")) {
        s.ids = encode_prompt(tok, args.value("prompt"), "--prompt");
        s.source = "--prompt";
    } else if (has(args, "file")) {
        s.ids = encode_prompt(tok, read_input(args.value("file"), "--file"), "--file");
        s.source = args.value("file");
    } else {
        s.ids = parse_ids(args.value("ids"), "ids");
        s.source = "--ids";
        check_vocab_ids(s.ids, model.config().n_vocab, "--ids");
    }
    const int64_t n = int64_t(s.ids.size());
    s.pos = n - 1;
    if (has(args, "pos")) s.pos = int_option(args, "pos", between(0, n - 1));
    if (s.pos >= model.config().n_ctx)
        usage_error((has(args, "pos") ? "--pos " + std::to_string(s.pos) + " is"
                                      : s.source + ": the text's last position " + std::to_string(s.pos) + " is") +
                    " beyond the model's context of " + std::to_string(model.config().n_ctx) +
                    " positions (give a shorter text or a smaller --pos)");
    s.ids.resize(size_t(s.pos + 1));
    return s;
}

// --target A, --contrast A,B, or the top prediction.
DlaTarget read_target(const Tokenizer& tok, const TokenizerSpec& spec, const ParsedFlags& args,
                      const float* logits, int64_t n_vocab) {
    if (has(args, "target") && has(args, "contrast")) usage_error("give --target or --contrast, not both");
    DlaTarget t;
    if (has(args, "contrast")) {
        const std::string v = args.value("contrast");
        const size_t comma = v.rfind(',');
        if (comma == std::string::npos || comma == 0 || comma + 1 == v.size())
            usage_error("--contrast: expected two tokens A,B (e.g. \" he\",\" she\" or #258,#427), got " + json_quote(v));
        t.token = token_argument(tok, spec, v.substr(0, comma), "--contrast");
        t.contrast = token_argument(tok, spec, v.substr(comma + 1), "--contrast");
        if (t.token == t.contrast) usage_error("--contrast: A and B are the same token");
    } else if (has(args, "target")) {
        t.token = token_argument(tok, spec, args.value("target"), "--target");
    } else {
        t.token = int32_t(std::max_element(logits, logits + n_vocab) - logits);
    }
    return t;
}

void print_report(const DlaResult& r, double model_value, const std::string& what, int64_t top) {
    std::printf("final LayerNorm scale at position %lld: %.6g (frozen)\n", (long long)r.pos, r.ln_scale);
    const double diff = std::fabs(r.total() - model_value);
    std::printf("sum of the components %.6f, the model's %s %.6f: |difference| %.3g (relative %.3g)\n\n", r.total(),
                what.c_str(), model_value, diff, model_value != 0 ? diff / std::fabs(model_value) : diff);
    std::printf("%-6s", "layer");
    for (int64_t h = 0; h < r.n_head; ++h) std::printf(" %8s", ("H" + std::to_string(h)).c_str());
    std::printf(" %10s %8s\n", "attn_bias", "mlp");
    for (int64_t l = 0; l < r.n_layer; ++l) {
        std::printf("%-6s", ("L" + std::to_string(l)).c_str());
        for (int64_t h = 0; h < r.n_head; ++h) std::printf(" %+8.3f", r.heads[size_t(l * r.n_head + h)]);
        std::printf(" %+10.3f %+8.3f\n", r.attn_bias[size_t(l)], r.mlp[size_t(l)]);
    }
    std::printf("embed %+.4f   pos_embed %+.4f   ln_final_bias %+.4f\n\ntop heads by |contribution|:", r.embed,
                r.pos_embed, r.ln_final_bias);
    for (int64_t k : r.top_heads(top))
        std::printf(" %s %+.4f", head_label(HeadRef{int(k / r.n_head), int(k % r.n_head)}).c_str(), r.heads[size_t(k)]);
    std::printf("\n");
}

void write_csv(const std::string& path, const DlaResult& r) {
    std::string s = "component,contribution\n";
    char buf[32];
    for (const auto& [name, value] : r.components()) {
        std::snprintf(buf, sizeof buf, "%.9g", value);
        s += name + "," + buf + "\n";
    }
    write_file_atomically(path, s);
}

void write_svg(const std::string& path, const DlaResult& r, const std::string& what, const std::string& model_name) {
    // The heads get their own symmetric scale (an MLP often outweighs every
    // head, which would wash them out); the other two panels share one.
    double limit = std::max({std::fabs(r.embed), std::fabs(r.pos_embed), std::fabs(r.ln_final_bias)});
    for (size_t l = 0; l < r.mlp.size(); ++l) limit = std::max({limit, std::fabs(r.mlp[l]), std::fabs(r.attn_bias[l])});
    std::vector<SvgPanel> panels{head_heatmap("direct logit attribution per head: " + what, r.n_layer, r.n_head, r.heads)};
    SvgHeatmap other;
    other.title = "attention bias, MLP";
    other.rows = r.n_layer;
    other.cols = 2;
    other.col_labels = {"attn_bias", "mlp"};
    for (int64_t l = 0; l < r.n_layer; ++l) {
        other.row_labels.push_back("L" + std::to_string(l));
        other.values.push_back(r.attn_bias[size_t(l)]);
        other.values.push_back(r.mlp[size_t(l)]);
    }
    other.diverging = true;
    other.vmin = -(limit > 0 ? limit : 1), other.vmax = -other.vmin;
    other.cell = int(std::clamp<int64_t>(480 / std::max<int64_t>(r.n_head, 1), 14, 36));
    other.show_values = other.cell >= 30;
    SvgHeatmap ends = other;
    ends.title = "embeddings, final LayerNorm bias";
    ends.rows = 3;
    ends.cols = 1;
    ends.col_labels = {};
    ends.row_labels = {"embed", "pos_embed", "ln_final_bias"};
    ends.values = {r.embed, r.pos_embed, r.ln_final_bias};
    panels.push_back(render_heatmap(other));
    panels.push_back(render_heatmap(ends));
    write_file_atomically(path, svg_document(panels, "minigpt heads dla: " + model_name + ", position " + std::to_string(r.pos)));
}

}  // namespace

int heads_dla(int argc, char** argv) {
    Options opts = command_options(argv[0], std::string("Direct logit attribution per head.\n\n") + kDefinition);
    add_model_option(opts);
    add_prompt_option(opts, "the text (BOS first when the tokenizer adds one, as generate does)");
    add_file_option(opts, "read the text from FILE");
    add_ids_option(opts);
    opts.add_options()("target", "attribute this token's logit (default: the model's top prediction)",
                       text_value(), "TOKEN")(
        "contrast", "attribute logit A - logit B", text_value(), "A,B")(
        "pos", "the position to attribute, from 0 (default: the last)", number_value(), "N")(
        "top", "heads listed as the largest contributions", number_value("10"), "N")(
        "csv", "write the components as CSV (component,contribution)", text_value(), "FILE")(
        "svg", "write layer x head and component heat maps as SVG", text_value(), "FILE");
    add_threads_option(opts);
    ParsedFlags args;
    if (!parse_flags(opts, argc, argv, args)) return 0;
    const std::string model_path = required_option(args, "model", "-m/--model");
    const int threads = threads_option(args);
    const int64_t top = int_option(args, "top", at_least(0));
    require_file(model_path, "--model");

    const auto [model, spec, tok] = load_model_with_tokenizer(model_path);
    const Config& c = model->config();
    const Setup s = read_text(*model, *tok, args);
    TransformerOptions to;
    to.n_ctx = int64_t(s.ids.size());
    to.n_threads = threads;
    Transformer tf(*model, to);
    DlaCapture cap(c);
    tf.set_hooks(&cap);
    const float* logits = tf.forward(s.ids.data(), int64_t(s.ids.size()));
    const DlaTarget target = read_target(*tok, spec, args, logits, c.n_vocab);
    const DlaResult r = direct_logit_attribution(*model, cap, s.ids.back(), target);

    std::vector<int32_t> order;
    const DistributionSummary dist = summarize_distribution(logits, c.n_vocab, target.token, 0, order);
    std::string what = "logit " + token_name(*tok, spec, target.token);
    double model_value = logits[target.token];
    if (target.contrast >= 0) {
        what += " - logit " + token_name(*tok, spec, target.contrast);
        model_value -= double(logits[target.contrast]);
    }
    std::printf("%s: %zu tokens (%s), position %lld is %s; attributing %s (#%d, p %.4g%s)\n",
                model->gguf().get_string("general.name", "model").c_str(), s.ids.size(), s.source.c_str(),
                (long long)s.pos, token_name(*tok, spec, s.ids.back()).c_str(), what.c_str(), target.token,
                std::exp(dist.logprob), has(args, "target") || has(args, "contrast") ? "" : ", the top prediction");
    print_report(r, model_value, target.contrast >= 0 ? "logit difference" : "logit", top);
    if (has(args, "csv")) write_csv(args.value("csv"), r);
    if (has(args, "svg")) write_svg(args.value("svg"), r, what, model->gguf().get_string("general.name", "model"));
    return 0;
}

}  // namespace minigpt::cli
