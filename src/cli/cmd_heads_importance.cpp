// minigpt heads importance: how much each attention head matters, measured by
// the perplexity of a text with the head ablated, and the pruning curve.
#include <algorithm>
#include <cmath>
#include <cstdio>

#include <cxxopts.hpp>

#include "analysis/ablation.h"
#include "analysis/head_importance.h"
#include "cli/heads_common.h"
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

}  // namespace

int heads_importance(int argc, char** argv) {
    cxxopts::Options opts(argv[0], std::string("Head importance by ablation, and the pruning curve.\n\n") + kDefinition);
    opts.add_options()("m,model", "GGUF model", cxxopts::value<std::string>())(
        "f,file", "text file to score (the model's tokenizer)", cxxopts::value<std::string>())(
        "ids", "token ids to score instead of a file", cxxopts::value<std::string>())(
        "c,ctx-size", "tokens per window (0: 512 or the model's context if smaller)",
        cxxopts::value<int64_t>()->default_value("0"))(
        "chunks", "score at most this many windows (0: all)", cxxopts::value<int64_t>()->default_value("0"))(
        "ablate-mode", "zero or mean", cxxopts::value<std::string>()->default_value("zero"))(
        "mean-file", "text whose mean head outputs mean ablation uses (default: the scored text)",
        cxxopts::value<std::string>())(
        "no-curve", "skip the pruning curve (halves the time)")(
        "top", "heads listed as most and least important", cxxopts::value<int>()->default_value("5"))(
        "csv", "write the per-head table as CSV", cxxopts::value<std::string>())(
        "svg", "write the importance heat map and the pruning curve as SVG", cxxopts::value<std::string>())(
        "t,threads", "threads", cxxopts::value<int>()->default_value("1"))("h,help", "this help");
    auto args = opts.parse(argc, argv);
    if (args.count("help")) {
        std::printf("%s\n", opts.help().c_str());
        return 0;
    }
    if (!args.count("model")) throw cxxopts::exceptions::missing_argument("model");
    const int threads = args["threads"].as<int>();
    if (threads < 1) throw std::runtime_error("--threads must be at least 1");
    const AblationMode mode = parse_ablation_mode(args["ablate-mode"].as<std::string>());

    auto model = Model::load(args["model"].as<std::string>());
    const Config& c = model->config();
    const HeadsText text = load_heads_text(*model, args);
    const int64_t window = window_size(*model, args["ctx-size"].as<int64_t>());
    const auto windows = split_windows(text.ids, window, text.bos, args["chunks"].as<int64_t>());
    if (windows.empty()) throw std::runtime_error(text.source + ": fewer than 2 tokens: nothing to score");

    ImportanceOptions io;
    io.mode = mode;
    io.curve = !args.count("no-curve");
    io.n_threads = threads;
    if (mode == AblationMode::Mean) {
        if (args.count("mean-file")) {
            const HeadsText ref = load_heads_text_file(*model, args["mean-file"].as<std::string>());
            io.means = mean_head_outputs(*model, split_windows(ref.ids, window, ref.bos), threads);
        } else {
            io.means = mean_head_outputs(*model, windows, threads);
        }
    }
    const int64_t K = c.n_layer * c.n_head;
    std::fprintf(stderr, "%s: %zu window(s) of up to %lld tokens; %lld evaluations (%s ablation)\n", text.source.c_str(),
                 windows.size(), (long long)window, (long long)(1 + K + (io.curve ? K : 0)), ablation_mode_name(mode));
    HeadsProgress progress("heads importance", 1 + K + (io.curve ? K : 0));
    const ImportanceReport rep = run_head_importance(*model, windows, io, progress.callback());
    progress.finish("done");

    // Where each head falls in the pruning order.
    std::vector<int64_t> rank(static_cast<size_t>(K));
    for (size_t i = 0; i < rep.prune_order.size(); ++i)
        rank[size_t(rep.prune_order[i].layer * c.n_head + rep.prune_order[i].head)] = int64_t(i);

    std::printf("baseline perplexity %.4f over %lld tokens (%zu windows of up to %lld)\n\n", rep.baseline_ppl,
                (long long)rep.tokens_scored, windows.size(), (long long)window);
    std::printf("%-8s %12s %12s %6s\n", "head", "ablated PPL", "increase", "rank");
    for (int64_t k = 0; k < K; ++k)
        std::printf("%-8s %12.4f %+12.4f %6lld\n", head_label(HeadRef{int(k / c.n_head), int(k % c.n_head)}).c_str(),
                    rep.ablated_ppl[size_t(k)], rep.ablated_ppl[size_t(k)] - rep.baseline_ppl,
                    (long long)(K - rank[size_t(k)]));
    const int top = std::max(0, args["top"].as<int>());
    std::printf("\nmost important: ");
    for (int i = 0; i < top && i < K; ++i) {
        const HeadRef h = rep.prune_order[size_t(K - 1 - i)];
        std::printf("%s %s %+.3f", i ? "," : "", head_label(h).c_str(),
                    rep.ablated_ppl[size_t(h.layer * c.n_head + h.head)] - rep.baseline_ppl);
    }
    std::printf("\nleast important: ");
    for (int i = 0; i < top && i < K; ++i) {
        const HeadRef h = rep.prune_order[size_t(i)];
        std::printf("%s %s %+.3f", i ? "," : "", head_label(h).c_str(),
                    rep.ablated_ppl[size_t(h.layer * c.n_head + h.head)] - rep.baseline_ppl);
    }
    std::printf("\n");
    if (io.curve) {
        std::printf("\npruning curve (heads removed, least important first):\n%8s %-8s %12s\n", "removed", "head", "PPL");
        std::printf("%8d %-8s %12.4f\n", 0, "-", rep.baseline_ppl);
        for (size_t i = 0; i < rep.curve_ppl.size(); ++i)
            std::printf("%8zu %-8s %12.4f\n", i + 1, head_label(rep.prune_order[i]).c_str(), rep.curve_ppl[i]);
    }

    if (args.count("csv")) {
        std::string s = "layer,head,name,ablated_ppl,importance,prune_step,ppl_after_prune_step\n";
        for (int64_t k = 0; k < K; ++k) {
            const HeadRef h{int(k / c.n_head), int(k % c.n_head)};
            const int64_t step = rank[size_t(k)];
            s += std::to_string(h.layer) + "," + std::to_string(h.head) + "," + head_label(h) + "," +
                 num(rep.ablated_ppl[size_t(k)]) + "," + num(rep.ablated_ppl[size_t(k)] - rep.baseline_ppl) + "," +
                 std::to_string(step + 1) + "," + (io.curve ? num(rep.curve_ppl[size_t(step)]) : std::string()) + "\n";
        }
        OutputFile out(args["csv"].as<std::string>());
        out.write(s);
        out.commit();
    }
    if (args.count("svg")) {
        SvgHeatmap hm;
        hm.title = "importance: PPL increase when the head alone is ablated (" + std::string(ablation_mode_name(mode)) + ")";
        hm.rows = c.n_layer;
        hm.cols = c.n_head;
        for (int64_t l = 0; l < c.n_layer; ++l) hm.row_labels.push_back("L" + std::to_string(l));
        for (int64_t h = 0; h < c.n_head; ++h) hm.col_labels.push_back("H" + std::to_string(h));
        for (int64_t k = 0; k < K; ++k) {
            hm.values.push_back(rep.ablated_ppl[size_t(k)] - rep.baseline_ppl);
            hm.cell_labels.push_back(head_label(HeadRef{int(k / c.n_head), int(k % c.n_head)}));
        }
        hm.cell = int(std::clamp<int64_t>(480 / std::max<int64_t>(c.n_head, 1), 14, 36));
        hm.show_values = hm.cell >= 30;
        std::vector<SvgPanel> panels{render_heatmap(hm)};
        if (io.curve) {
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
        OutputFile out(args["svg"].as<std::string>());
        out.write(svg_document(panels, "minigpt heads importance: " + model->gguf().get_string("general.name", "model")));
        out.commit();
    }
    return 0;
}

}  // namespace minigpt::cli
