// minigpt heads grad: gradient head importance (Michel et al. 2019) by one
// forward and one backward pass per window; definitions in
// analysis/head_gradient.h and docs/heads.md. --compare ranks the heads by
// ablation on the same windows (analysis/head_importance.h) and prints the
// Spearman correlation of the two rankings.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <numeric>


#include "analysis/ablation.h"
#include "analysis/head_gradient.h"
#include "analysis/head_importance.h"
#include "cli/args.h"
#include "cli/heads_common.h"
#include "eval/perplexity.h"
#include "util/memory_usage.h"
#include "util/output_file.h"
#include "util/plot_svg.h"
#include "util/resource_limits.h"

namespace minigpt::cli {

namespace {

const char* kDefinition =
    "A mask xi_h multiplies every head's z_h (hook_z, before the output projection); xi = 1 is the model.\n"
    "L_w = mean next-token NLL over the scored positions of window w, windows and scored positions as\n"
    "`perplexity` chooses them with the same -c/--stride/--bos-chunks/--chunks (default: llama-perplexity's\n"
    "chunks, the second half of each scored); with --ids the ids are one window, every prediction scored.\n"
    "  grad_h       = mean_w dL_w/dxi_h   (signed; -grad_h estimates the loss change of zero-ablating h)\n"
    "  importance_h = mean_w |dL_w/dxi_h| (Michel et al. 2019)\n"
    "computed by one forward and one backward pass per window (no run per head).\n"
    "--compare: the perplexity with each head alone zero-ablated on the same windows (heads importance's\n"
    "ranking) and Spearman's rank correlation of importance and of -grad with its increase.";

struct GradText {
    std::vector<int32_t> tokens;
    std::vector<Window> windows;
    PerplexityOptions opt;
    std::string source, protocol;
};

// --ids: one window, every next-token prediction scored.
GradText ids_text(const Model& model, const ParsedFlags& args) {
    for (const char* flag : {"ctx-size", "stride", "bos-chunks", "chunks"})
        if (has(args, flag)) usage_error(std::string("--") + flag + " applies to -f/--file; --ids are one window");
    GradText t;
    t.tokens = parse_ids(args.value("ids"), "ids");
    const Config& c = model.config();
    check_vocab_ids(t.tokens, c.n_vocab, "--ids");
    if (t.tokens.size() < 2) usage_error("--ids: need at least 2 ids (the first predicts the second)");
    if (int64_t(t.tokens.size()) - 1 > c.n_ctx)
        usage_error("--ids: " + std::to_string(t.tokens.size()) + " ids exceed the model's context of " +
                    std::to_string(c.n_ctx) + " positions (+1 target)");
    t.windows.push_back(Window{0, int64_t(t.tokens.size()), 1});
    t.opt.n_vocab = c.n_vocab;
    t.source = "--ids";
    t.protocol = "one window, every prediction scored";
    return t;
}

// -f: the perplexity command's protocols (eval/perplexity.h plan_perplexity).
GradText file_text(const Model& model, const ParsedFlags& args) {
    const Config& c = model.config();
    const int64_t n_ctx = has(args, "ctx-size") ? int_option(args, "ctx-size", at_least(2)) : std::min<int64_t>(512, c.n_ctx);
    if (n_ctx > c.n_ctx)
        usage_error("--ctx-size " + std::to_string(n_ctx) + " exceeds the model's context length of " +
                    std::to_string(c.n_ctx));
    PerplexityProtocol protocol = PerplexityProtocol::Llama;
    int64_t stride = 0;
    if (has(args, "stride") && has(args, "bos-chunks")) usage_error("--stride and --bos-chunks cannot be combined");
    if (has(args, "stride")) {
        protocol = PerplexityProtocol::Sliding;
        stride = int_option(args, "stride", between(1, n_ctx));
    }
    if (has(args, "bos-chunks")) protocol = PerplexityProtocol::BosChunks;
    const int64_t chunks = has(args, "chunks") ? int_option(args, "chunks", at_least(1)) : -1;
    const std::string path = args.value("file");
    const std::unique_ptr<Tokenizer> tok = make_tokenizer(model.tokenizer_spec());
    PerplexityPlan plan = plan_perplexity(*tok, read_input(path, "-f/--file"), c.n_vocab, n_ctx, protocol, stride, chunks);
    GradText t{std::move(plan.tokens), std::move(plan.windows), plan.opt, path, ""};
    t.protocol = protocol == PerplexityProtocol::Sliding ? "sliding windows of " + std::to_string(n_ctx) + ", stride " +
                                                               std::to_string(stride)
                 : protocol == PerplexityProtocol::BosChunks ? "BOS chunks of " + std::to_string(n_ctx)
                                                             : "llama-perplexity chunks of " + std::to_string(n_ctx);
    return t;
}

std::string label(const HeadGradientReport& r, size_t k) {
    return head_label(HeadRef{int(k / size_t(r.n_head)), int(k % size_t(r.n_head))});
}

std::string num(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.9g", v);
    return buf;
}

// One layer x head grid of `v` under `title`, each value printed with `fmt`.
void print_grid(const HeadGradientReport& r, const char* title, const std::vector<double>& v, const char* fmt) {
    std::printf("\n%s\n%-6s", title, "layer");
    for (int64_t h = 0; h < r.n_head; ++h) std::printf(" %9s", ("H" + std::to_string(h)).c_str());
    for (int64_t l = 0; l < r.n_layer; ++l) {
        std::printf("\n%-6s", ("L" + std::to_string(l)).c_str());
        for (int64_t h = 0; h < r.n_head; ++h) std::printf(fmt, v[size_t(l * r.n_head + h)]);
    }
    std::printf("\n");
}

void print_report(const HeadGradientReport& r, const WindowAblation* ab, int top) {
    std::printf("mean loss %.9f (perplexity %.4f) over %lld window(s), %lld tokens scored\n", r.mean_loss,
                std::exp(r.mean_loss), (long long)r.windows, (long long)r.tokens_scored);
    print_grid(r, "importance = mean over windows of |dL/dxi_h|:", r.importance, " %9.3g");
    print_grid(r, "grad = mean over windows of dL/dxi_h (negative: the head lowers the loss):", r.grad, " %+9.2e");
    if (ab) {
        std::vector<double> inc;
        for (double p : ab->ablated_ppl) inc.push_back(p - ab->baseline_ppl);
        char title[160];
        std::snprintf(title, sizeof title, "ablation (--compare): perplexity increase with the head alone zeroed (baseline %.4f):",
                      ab->baseline_ppl);
        print_grid(r, title, inc, " %+9.3g");
    }
    std::vector<size_t> order(r.grad.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return r.importance[a] > r.importance[b]; });
    std::printf("\nmost important:");
    for (size_t i = 0; i < std::min(order.size(), size_t(top)); ++i)
        std::printf("%s %s %.3g", i ? "," : "", label(r, order[i]).c_str(), r.importance[order[i]]);
    std::printf("\n");
}

void write_csv(const std::string& path, const HeadGradientReport& r, const WindowAblation* ab) {
    std::string s = ab ? "head,grad,importance,ablation_ppl_increase\n" : "head,grad,importance\n";
    for (size_t k = 0; k < r.grad.size(); ++k) {
        s += label(r, k) + "," + num(r.grad[k]) + "," + num(r.importance[k]);
        if (ab) s += "," + num(ab->ablated_ppl[k] - ab->baseline_ppl);
        s += "\n";
    }
    write_file_atomically(path, s);
}

SvgHeatmap head_map(const HeadGradientReport& r, const std::string& title, const std::vector<double>& values) {
    SvgHeatmap hm = head_grid(title, r.n_layer, r.n_head, values);
    hm.show_values = false;  // gradients need more digits than fit (each cell's tooltip has them)
    return hm;
}

void write_svg(const std::string& path, const std::string& model_name, const HeadGradientReport& r,
               const WindowAblation* ab) {
    std::vector<SvgPanel> panels;
    panels.push_back(render_heatmap(head_map(r, "importance: mean over windows of |dL/dxi_h|", r.importance)));
    SvgHeatmap g = head_map(r, "grad: mean dL/dxi_h (blue: the head lowers the loss)", r.grad);
    g.diverging = true;  // white = 0
    panels.push_back(render_heatmap(g));
    if (ab) {
        std::vector<double> inc;
        for (double p : ab->ablated_ppl) inc.push_back(p - ab->baseline_ppl);
        SvgHeatmap a = head_map(r, "ablation: PPL increase with the head alone zeroed", inc);
        a.show_values = a.cell >= 30;
        panels.push_back(render_heatmap(a));
    }
    write_file_atomically(path, svg_document(panels, "minigpt heads grad: " + model_name));
}

}  // namespace

int heads_grad(int argc, char** argv) {
    Options opts = command_options(argv[0], std::string("Gradient head importance.\n\n") + kDefinition);
    add_model_option(opts);
    add_file_option(opts, "text to score, cut into windows as perplexity cuts it");
    add_ids_option(opts, "token ids to score as one window instead of a file");
    add_ctx_option(opts, "tokens per window with -f (default 512, or the model's context if smaller)", "");
    opts.add_options()("stride", "Hugging Face sliding windows with this stride (as perplexity --stride)",
                       number_value(), "S")(
        "bos-chunks", "scripts/train.py's protocol (as perplexity --bos-chunks)")(
        "chunks", "score at most N windows", number_value(), "N")(
        "compare", "also rank the heads by ablation on the same windows and print the Spearman correlation")(
        "top", "heads listed as most important", number_value("10"), "N")(
        "csv", "write head,grad,importance as CSV", text_value(), "FILE")(
        "svg", "write the heat maps as SVG", text_value(), "FILE");
    add_threads_option(opts);
    ParsedFlags args;
    if (!parse_flags(opts, argc, argv, args)) return 0;
    const std::string model_path = required_option(args, "model", "-m/--model");
    const int threads = threads_option(args);
    const int top = int(int_option(args, "top", at_least(0)));
    if (has(args, "file") == has(args, "ids")) usage_error("give the text as -f/--file FILE or as --ids \"ID ID ...\" (one of the two)");
    require_file(model_path, "-m/--model");

    auto model = Model::load(model_path);
    const GradText text = has(args, "ids") ? ids_text(*model, args) : file_text(*model, args);
    std::fprintf(stderr, "heads grad: %s: %zu tokens, %zu window(s) (%s)\n", text.source.c_str(), text.tokens.size(),
                 text.windows.size(), text.protocol.c_str());

    HeadsProgress progress("heads grad", int64_t(text.windows.size()));
    const auto t0 = std::chrono::steady_clock::now();
    const HeadGradientReport rep = run_head_gradient(*model, text.tokens, text.windows, text.opt, threads, progress.callback());
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    progress.finish("done");
    std::fprintf(stderr, "heads grad: %.2f s, saved activations and backward buffers %s, peak resident memory %s\n",
                 seconds, format_bytes(rep.buffer_bytes).c_str(), format_bytes(peak_resident_bytes()).c_str());

    std::unique_ptr<WindowAblation> ab;
    if (has(args, "compare")) {
        const int64_t K = rep.n_layer * rep.n_head;
        HeadsProgress ab_progress("ablation", 1 + K);
        const auto t1 = std::chrono::steady_clock::now();
        ab = std::make_unique<WindowAblation>(
            ablate_each_head(*model, text.tokens, text.windows, text.opt, threads, ab_progress.callback()));
        ab_progress.finish("done");
        std::fprintf(stderr, "ablation: %.2f s (%lld perplexity runs)\n",
                     std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count(), (long long)(1 + K));
    }
    print_report(rep, ab.get(), top);
    if (ab) {
        std::vector<double> inc, neg_grad;
        for (size_t k = 0; k < rep.grad.size(); ++k) {
            inc.push_back(ab->ablated_ppl[k] - ab->baseline_ppl);
            neg_grad.push_back(-rep.grad[k]);
        }
        std::printf("Spearman rank correlation with the ablation's perplexity increase, over %zu heads:\n"
                    "  importance %.4f\n  -grad      %.4f\n",
                    inc.size(), spearman_correlation(rep.importance, inc), spearman_correlation(neg_grad, inc));
    }
    if (has(args, "csv")) write_csv(args.value("csv"), rep, ab.get());
    if (has(args, "svg"))
        write_svg(args.value("svg"), model->gguf().get_string("general.name", "model"), rep, ab.get());
    return 0;
}

}  // namespace minigpt::cli
