// minigpt heads importance: how much each attention head matters, measured by
// the perplexity of a text with the head ablated, and the pruning curve.
#include <algorithm>
#include <cmath>
#include <cstdio>


#include "analysis/ablation.h"
#include "analysis/head_importance.h"
#include "cli/heads_common.h"
#include "cli/heads_flags.h"
#include "util/output_file.h"
#include "util/plot_svg.h"

namespace minigpt::cli {

namespace {

const char* kDefinition =
    "Perplexity = exp(mean negative log-likelihood of every token but the first of each window,\n"
    "predicted from its prefix within the window); windows of -c tokens, consecutive and\n"
    "non-overlapping, each run from an empty cache (with BOS first when the tokenizer adds one).\n"
    "importance(head) = PPL with that head alone ablated - baseline PPL. Ablation: the head's z\n"
    "(its weighted values) is zeroed before the output projection (Hugging Face head_mask), or with\n"
    "--ablate-mode mean replaced by its mean over the text (an unablated run).\n"
    "Pruning curve: heads removed cumulatively in increasing order of importance, PPL after each.";

std::string num(double v, const char* f = "%.9g") {
    char buf[32];
    std::snprintf(buf, sizeof buf, f, v);
    return buf;
}

// Where each head falls in the pruning order.
std::vector<int64_t> prune_rank(const ImportanceReport& rep, const Config& c) {
    std::vector<int64_t> rank(size_t(c.n_layer * c.n_head));
    for (size_t i = 0; i < rep.prune_order.size(); ++i)
        rank[size_t(rep.prune_order[i].layer * c.n_head + rep.prune_order[i].head)] = int64_t(i);
    return rank;
}

void print_heads(const char* title, const ImportanceReport& rep, const Config& c, int64_t top, bool most) {
    const int64_t K = c.n_layer * c.n_head;
    std::printf("\n%s: ", title);
    for (int64_t i = 0; i < top && i < K; ++i) {
        const HeadRef h = rep.prune_order[size_t(most ? K - 1 - i : i)];
        std::printf("%s %s %+.3f", i ? "," : "", head_label(h).c_str(),
                    rep.ablated_ppl[size_t(h.layer * c.n_head + h.head)] - rep.baseline_ppl);
    }
}

void print_report(const ImportanceReport& rep, const Config& c, const HeadsText& text, int64_t top, bool curve) {
    const int64_t K = c.n_layer * c.n_head;
    const std::vector<int64_t> rank = prune_rank(rep, c);
    std::printf("baseline perplexity %.4f over %lld tokens (%zu windows of up to %lld)\n\n", rep.baseline_ppl,
                (long long)rep.tokens_scored, text.windows.size(), (long long)text.window);
    std::printf("%-8s %12s %12s %6s\n", "head", "ablated PPL", "increase", "rank");
    for (int64_t k = 0; k < K; ++k)
        std::printf("%-8s %12.4f %+12.4f %6lld\n", head_label(HeadRef{int(k / c.n_head), int(k % c.n_head)}).c_str(),
                    rep.ablated_ppl[size_t(k)], rep.ablated_ppl[size_t(k)] - rep.baseline_ppl,
                    (long long)(K - rank[size_t(k)]));
    print_heads("most important", rep, c, top, true);
    print_heads("least important", rep, c, top, false);
    std::printf("\n");
    if (!curve) return;
    std::printf("\npruning curve (heads removed, least important first):\n%8s %-8s %12s\n", "removed", "head", "PPL");
    std::printf("%8d %-8s %12.4f\n", 0, "-", rep.baseline_ppl);
    for (size_t i = 0; i < rep.curve_ppl.size(); ++i)
        std::printf("%8zu %-8s %12.4f\n", i + 1, head_label(rep.prune_order[i]).c_str(), rep.curve_ppl[i]);
}

void write_csv(const std::string& path, const ImportanceReport& rep, const Config& c, bool curve) {
    const std::vector<int64_t> rank = prune_rank(rep, c);
    std::string s = "layer,head,name,ablated_ppl,importance,prune_step,ppl_after_prune_step\n";
    for (int64_t k = 0; k < c.n_layer * c.n_head; ++k) {
        const HeadRef h{int(k / c.n_head), int(k % c.n_head)};
        const int64_t step = rank[size_t(k)];
        s += std::to_string(h.layer) + "," + std::to_string(h.head) + "," + head_label(h) + "," +
             num(rep.ablated_ppl[size_t(k)]) + "," + num(rep.ablated_ppl[size_t(k)] - rep.baseline_ppl) + "," +
             std::to_string(step + 1) + "," + (curve ? num(rep.curve_ppl[size_t(step)]) : std::string()) + "\n";
    }
    write_file_atomically(path, s);
}

void write_svg(const std::string& path, const ImportanceReport& rep, const Model& model, AblationMode mode,
               bool curve) {
    const Config& c = model.config();
    std::vector<double> increase;
    for (int64_t k = 0; k < c.n_layer * c.n_head; ++k) increase.push_back(rep.ablated_ppl[size_t(k)] - rep.baseline_ppl);
    const std::string title =
        "importance: PPL increase when the head alone is ablated (" + std::string(ablation_mode_name(mode)) + ")";
    std::vector<SvgPanel> panels{render_heatmap(head_grid(title, c.n_layer, c.n_head, increase))};
    if (curve) {
        SvgLineChart ch;
        ch.title = "pruning curve";
        ch.x_label = "heads removed (least important first)";
        ch.y_label = "perplexity";
        ch.x.push_back(0);
        ch.y.push_back(rep.baseline_ppl);
        for (size_t i = 0; i < rep.curve_ppl.size(); ++i) {
            ch.x.push_back(double(i + 1));
            ch.y.push_back(rep.curve_ppl[i]);
        }
        ch.reference_y = rep.baseline_ppl;
        ch.reference_label = "baseline";
        ch.log_y = true;
        panels.push_back(render_line_chart(ch));
    }
    write_file_atomically(path, svg_document(panels, "minigpt heads importance: " + model.gguf().get_string("general.name", "model")));
}

}  // namespace

int heads_importance(int argc, char** argv) {
    Options opts =
        command_options(argv[0], std::string("Head importance by ablation, and the pruning curve.\n\n") + kDefinition);
    add_model_option(opts);
    add_heads_text_options(opts, "score");
    add_threads_option(opts);
    opts.add_options()("ablate-mode", "zero or mean", text_value("zero"), "MODE")(
        "mean-file", "text whose mean head outputs mean ablation uses (default: the scored text)",
        text_value(), "FILE")("no-curve", "skip the pruning curve (halves the time)")(
        "top", "heads listed as most and least important", number_value("5"), "N")(
        "csv", "write the per-head table as CSV", text_value(), "FILE")(
        "svg", "write the importance heat map and the pruning curve as SVG", text_value(), "FILE");
    ParsedFlags args;
    if (!parse_flags(opts, argc, argv, args)) return 0;
    const std::string model_path = required_option(args, "model", "-m/--model");
    const int threads = threads_option(args);
    const int64_t top = int_option(args, "top", at_least(0));
    const AblationMode mode = ablation_mode_option(args);
    const std::string mean_file = has(args, "mean-file") ? args.value("mean-file") : "";
    if (!mean_file.empty() && mode != AblationMode::Mean) usage_error("--mean-file needs --ablate-mode mean");

    auto model = Model::load(model_path);
    const Config& c = model->config();
    const HeadsText text = load_heads_windows(*model, args);
    ImportanceOptions io;
    io.mode = mode;
    io.curve = !has(args, "no-curve");
    io.n_threads = threads;
    if (mode == AblationMode::Mean) io.means = ablation_means(*model, mean_file, text.windows, text.window, threads);
    const int64_t K = c.n_layer * c.n_head, runs = 1 + K + (io.curve ? K : 0);
    std::fprintf(stderr, "%s: %zu window(s) of up to %lld tokens; %lld evaluations (%s ablation)\n", text.source.c_str(),
                 text.windows.size(), (long long)text.window, (long long)runs, ablation_mode_name(mode));
    HeadsProgress progress("heads importance", runs);
    const ImportanceReport rep = run_head_importance(*model, text.windows, io, progress.callback());
    progress.finish("done");

    print_report(rep, c, text, top, io.curve);
    if (has(args, "csv")) write_csv(args.value("csv"), rep, c, io.curve);
    if (has(args, "svg")) write_svg(args.value("svg"), rep, *model, mode, io.curve);
    return 0;
}

}  // namespace minigpt::cli
