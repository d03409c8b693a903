// minigpt heads circuits: how heads compose (Q/K/V composition scores between
// heads of different layers) and which heads copy (OV copying score), from the
// weights alone; definitions in analysis/composition.h and docs/heads.md.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <numeric>


#include "analysis/ablation.h"
#include "analysis/composition.h"
#include "cli/args.h"
#include "cli/heads_common.h"
#include "kernels/blas.h"
#include "util/output_file.h"
#include "util/plot_svg.h"

namespace minigpt::cli {

namespace {

const char* kDefinitions =
    "Row vectors; per head OV = W_V W_O and QK = W_Q W_K^T (d_model x d_model). For a source head s in an\n"
    "earlier layer than a destination head t (TransformerLens all_composition_scores, Elhage et al. 2021):\n"
    "  q  |OV_s QK_t|_F   / (|OV_s|_F |QK_t|_F)   s writes what t's queries read\n"
    "  k  |OV_s QK_t^T|_F / (|OV_s|_F |QK_t|_F)   s writes what t's keys read\n"
    "  v  |OV_s OV_t|_F   / (|OV_s|_F |OV_t|_F)   s writes what t's values read\n"
    "  copy  sum(lambda) / sum(|lambda|) over the eigenvalues of W_E[S] OV W_U[:,S] (Olsson et al. 2022):\n"
    "        +1 = the head copies the tokens it attends to, -1 = it suppresses them\n"
    "0 when a denominator is 0 (a head that writes or reads nothing). Weights as TransformerLens's\n"
    "from_pretrained processes them: ln_1's weight folded into W_Q, W_K, W_V and ln_final's into W_U;\n"
    "reading weights (W_Q, W_K, W_V, W_U) and writing weights (W_O, W_E) centred over d_model, W_U's\n"
    "mean over the vocabulary removed (--no-center: folded only). S: --copy-tokens.";

const char* kKindNames[3] = {"q", "k", "v"};
const char* kKindTitles[3] = {"Q-composition |OV_src QK_dst| / (|OV_src| |QK_dst|)",
                              "K-composition |OV_src QK_dst^T| / (|OV_src| |QK_dst|)",
                              "V-composition |OV_src OV_dst| / (|OV_src| |OV_dst|)"};

const std::vector<double>& kind_scores(const CircuitScores& s, int kind) { return kind == 0 ? s.q : kind == 1 ? s.k : s.v; }

std::string label(const CircuitScores& s, int64_t i) { return head_label(HeadRef{int(i / s.n_head), int(i % s.n_head)}); }

// Indices (source * N + destination) of the pairs scored: source layer before destination layer.
std::vector<int64_t> scored_pairs(const CircuitScores& s) {
    const int64_t N = s.n_layer * s.n_head;
    std::vector<int64_t> out;
    for (int64_t a = 0; a < N; ++a)
        for (int64_t b = 0; b < N; ++b)
            if (a / s.n_head < b / s.n_head) out.push_back(a * N + b);
    return out;
}

void print_report(const CircuitScores& s, int64_t top) {
    const int64_t N = s.n_layer * s.n_head;
    const std::vector<int64_t> pairs = scored_pairs(s);
    for (int kind = 0; kind < 3 && !pairs.empty(); ++kind) {
        const std::vector<double>& v = kind_scores(s, kind);
        std::vector<int64_t> order = pairs;
        const size_t n = std::min(order.size(), size_t(top));
        std::partial_sort(order.begin(), order.begin() + long(n), order.end(),
                          [&](int64_t a, int64_t b) { return v[size_t(a)] > v[size_t(b)]; });
        double mean = 0;
        for (int64_t p : pairs) mean += v[size_t(p)];
        std::printf("\n%s\n  mean %.4f over %zu pairs; top %zu:\n", kKindTitles[kind], mean / double(pairs.size()),
                    pairs.size(), n);
        for (size_t i = 0; i < n; ++i)
            std::printf("  %-6s -> %-6s %.4f\n", label(s, order[i] / N).c_str(), label(s, order[i] % N).c_str(),
                        v[size_t(order[i])]);
    }
    std::printf("\nOV copying score, sum(lambda)/sum(|lambda|) over %lld tokens (layer x head):\n%-4s",
                (long long)s.copy_token_count, "");
    for (int64_t h = 0; h < s.n_head; ++h) std::printf(" %6s", ("H" + std::to_string(h)).c_str());
    for (int64_t l = 0; l < s.n_layer; ++l) {
        std::printf("\n%-4s", ("L" + std::to_string(l)).c_str());
        for (int64_t h = 0; h < s.n_head; ++h) std::printf(" %6.3f", s.copy[size_t(l * s.n_head + h)]);
    }
    std::printf("\n");
}

void write_csv(const std::string& path, const CircuitScores& s) {
    const int64_t N = s.n_layer * s.n_head;
    std::string out = "kind,from,to,score\n";
    char num[32];
    const std::vector<int64_t> pairs = scored_pairs(s);
    for (int kind = 0; kind < 3; ++kind)
        for (int64_t p : pairs) {
            std::snprintf(num, sizeof num, "%.9g", kind_scores(s, kind)[size_t(p)]);
            out += std::string(kKindNames[kind]) + "," + label(s, p / N) + "," + label(s, p % N) + "," + num + "\n";
        }
    for (int64_t i = 0; i < N; ++i) {  // one head's own OV circuit: no destination
        std::snprintf(num, sizeof num, "%.9g", s.copy[size_t(i)]);
        out += "copy," + label(s, i) + ",," + num + "\n";
    }
    write_file_atomically(path, out);
}

void write_svg(const std::string& path, const std::string& model_name, const CircuitScores& s) {
    const int64_t N = s.n_layer * s.n_head;
    std::vector<std::string> names;
    for (int64_t i = 0; i < N; ++i) names.push_back(label(s, i));
    std::vector<SvgPanel> panels;
    // Sources in layers 0..L-2 (rows), destinations in layers 1..L-1 (columns); grey: not earlier -> later.
    const int64_t H = s.n_head, side = N - H;
    const std::vector<std::string> sources(names.begin(), names.end() - H), destinations(names.begin() + H, names.end());
    for (int kind = 0; kind < 3 && s.n_layer > 1; ++kind) {
        SvgHeatmap hm;
        hm.title = kKindTitles[kind];
        hm.rows = hm.cols = side;
        hm.row_labels = sources;
        hm.col_labels = destinations;
        hm.cell = int(std::clamp<int64_t>(560 / side, 4, 24));
        const std::vector<double>& v = kind_scores(s, kind);
        for (int64_t a = 0; a < side; ++a)
            for (int64_t b = H; b < N; ++b) {
                const bool scored = a / H < b / H;
                hm.values.push_back(scored ? v[size_t(a * N + b)] : std::nan(""));
                hm.cell_labels.push_back(names[size_t(a)] + " -> " + names[size_t(b)]);
                if (scored) hm.vmax = std::max(hm.vmax, v[size_t(a * N + b)]);
            }
        if (hm.vmax == 0) hm.vmax = 1;
        panels.push_back(render_heatmap(hm));
    }
    SvgHeatmap copy = head_grid("OV copying score over " + std::to_string(s.copy_token_count) +
                                    " tokens (+1 copies, -1 suppresses)",
                                s.n_layer, s.n_head, s.copy);
    copy.vmin = -1;
    copy.vmax = 1;
    panels.push_back(render_heatmap(copy));
    write_file_atomically(path, svg_document(panels, "minigpt heads circuits: " + model_name +
                                                     " (composition maps: a row per source head, a column per destination head)"));
}

}  // namespace

int heads_circuits(int argc, char** argv) {
    Options opts = command_options(
        argv[0], std::string("Composition scores between heads and OV copying scores, from the weights.\n\n") +
                     kDefinitions);
    add_model_option(opts);
    opts.add_options()("copy-tokens",
                       "token ids S of the copying score: 0 = the whole vocabulary, N = N ids spread evenly, "
                       "floor(i * n_vocab / N) for i < N",
                       number_value("0"), "N")(
        "no-center", "fold the LayerNorm weights but centre nothing (TransformerLens's fold_layer_norm with "
                     "center_weights=False, no center_writing_weights or center_unembed)")(
        "top", "pairs listed per kind", number_value("10"), "N")(
        "csv", "write every score as CSV: kind,from,to,score (kind q, k, v, copy; to is empty for copy)",
        text_value(), "FILE")(
        "svg", "write the heat maps (source x destination per kind, layer x head copying scores) as SVG",
        text_value(), "FILE");
    add_threads_option(opts);
    ParsedFlags args;
    if (!parse_flags(opts, argc, argv, args)) return 0;
    const std::string model_path = required_option(args, "model", "-m/--model");
    const int threads = threads_option(args);
    const int64_t top = int_option(args, "top", at_least(0));
    const int64_t copy_tokens = int_option(args, "copy-tokens", at_least(0));
    require_file(model_path, "-m/--model");

    const auto model = Model::load(model_path);
    const Config& c = model->config();
    if (copy_tokens > c.n_vocab)
        usage_error("--copy-tokens: must be between 0 and " + std::to_string(c.n_vocab) + " (the vocabulary), got " +
                    std::to_string(copy_tokens));
    CircuitOptions co;
    co.center = !has(args, "no-center");
    co.copy_tokens = copy_tokens;
    blas::set_threads(threads);
    const std::string name = model->gguf().get_string("general.name", "model");
    std::printf("%s: %lld layers x %lld heads, d_model %lld, d_head %lld\n", name.c_str(), (long long)c.n_layer,
                (long long)c.n_head, (long long)c.n_embd, (long long)c.head_dim());
    std::printf("weights: %s\n", co.center ? "LayerNorm weights folded, reading and writing weights centred "
                                             "(TransformerLens from_pretrained defaults)"
                                           : "LayerNorm weights folded, nothing centred (--no-center)");
    std::printf("independent random matrices score about 1/sqrt(d_model) = %.3f\n", 1.0 / std::sqrt(double(c.n_embd)));

    const auto t0 = std::chrono::steady_clock::now();
    HeadsProgress progress("heads circuits", 2 * c.n_layer);
    const CircuitScores s = composition_scores(*model, co, progress.callback());
    progress.finish("done");
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const int64_t n_pairs = int64_t(scored_pairs(s).size());
    std::fprintf(stderr, "heads circuits: %lld pairs x 3 kinds and %lld copying scores (%lld tokens) in %.2f s, %d threads\n",
                 (long long)n_pairs, (long long)(c.n_layer * c.n_head), (long long)s.copy_token_count, seconds, threads);

    print_report(s, top);
    if (has(args, "csv")) write_csv(args.value("csv"), s);
    if (has(args, "svg")) write_svg(args.value("svg"), name, s);
    return 0;
}

}  // namespace minigpt::cli
