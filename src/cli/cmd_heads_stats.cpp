// minigpt heads stats: what every attention head does, measured over a text.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>

#include <nlohmann/json.hpp>

#include "analysis/ablation.h"
#include "analysis/head_stats.h"
#include "cli/heads_common.h"
#include "util/output_file.h"
#include "util/plot_svg.h"
#include "util/json.h"

namespace minigpt::cli {

namespace {

const char* kDefinitions =
    "Definitions (row i = attention of query position i over keys 0..i; text statistics average over\n"
    "query positions i >= 1 of every window):\n"
    "  entropy    mean -sum_j p_ij ln p_ij, nats (uniform over n keys: ln n)\n"
    "  distance   mean sum_j p_ij (i - j), tokens\n"
    "  sink       mean p_i0, weight on the window's first token\n"
    "  prev       mean p_i,i-1: previous-token score (TransformerLens previous-token pattern)\n"
    "  dup        weight on earlier positions holding the same token, averaged over the rows that\n"
    "             have one (TransformerLens duplicate-token pattern)\n"
    "  induction  on BOS + R random distinct tokens repeated twice: weight from each position of the\n"
    "             repeat onto the token after its earlier occurrence, averaged over the R rows\n"
    "             (Olsson et al. 2022 / ARENA; TransformerLens induction pattern)\n"
    "  similarity mean Jensen-Shannon divergence (nats, 0..ln 2) between two heads' rows over sampled\n"
    "             query positions (Clark et al. 2019); low = redundant heads\n"
    "TransformerLens divides a pattern score by all rows; here by the rows the pattern covers, so a\n"
    "head following the pattern exactly scores 1.";

struct Column {
    const char* key;    // CSV/JSON name
    const char* title;  // table heading
    double HeadScores::*field;
};
const Column kColumns[] = {
    {"entropy", "entropy", &HeadScores::entropy},   {"distance", "distance", &HeadScores::distance},
    {"sink", "sink", &HeadScores::sink},             {"prev_token", "prev", &HeadScores::prev_token},
    {"dup_token", "dup", &HeadScores::dup_token},    {"induction", "induction", &HeadScores::induction},
};

std::string num(double v, const char* f = "%.6g") {
    char buf[32];
    std::snprintf(buf, sizeof buf, f, v);
    return buf;
}

// Ids the induction sequences may draw from: the tokenizer's normal tokens
// (llama.cpp token type 1) when it says, else every id but BOS/EOS.
std::vector<int32_t> induction_vocabulary(const Model& model, int32_t& bos) {
    const int64_t V = model.config().n_vocab;
    std::vector<int32_t> allowed;
    bos = 0;
    try {
        const TokenizerSpec spec = model.tokenizer_spec();
        bos = spec.bos_id >= 0 ? spec.bos_id : (spec.eos_id >= 0 ? spec.eos_id : 0);
        for (int64_t id = 0; id < int64_t(spec.tokens.size()) && id < V; ++id) {
            const bool normal = spec.token_types.empty() || spec.token_types[size_t(id)] == 1;
            if (normal && id != spec.bos_id && id != spec.eos_id) allowed.push_back(int32_t(id));
        }
    } catch (const std::runtime_error&) {  // a file without a tokenizer: every id is fair
        for (int64_t id = 1; id < V; ++id) allowed.push_back(int32_t(id));
    }
    return allowed;
}

std::vector<int64_t> ranked(const HeadStatsReport& r, double HeadScores::*f, bool descending) {
    std::vector<int64_t> idx(r.heads.size());
    std::iota(idx.begin(), idx.end(), 0);
    std::stable_sort(idx.begin(), idx.end(), [&](int64_t a, int64_t b) {
        return descending ? r.heads[size_t(a)].*f > r.heads[size_t(b)].*f : r.heads[size_t(a)].*f < r.heads[size_t(b)].*f;
    });
    return idx;
}

std::string label(const HeadStatsReport& r, int64_t k) { return head_label(HeadRef{int(k / r.n_head), int(k % r.n_head)}); }

void print_report(const HeadStatsReport& r, int top) {
    std::printf("%-8s", "head");
    for (const Column& c : kColumns) std::printf(" %9s", c.title);
    std::printf("\n");
    for (size_t k = 0; k < r.heads.size(); ++k) {
        std::printf("%-8s", label(r, int64_t(k)).c_str());
        for (const Column& c : kColumns) std::printf(" %9.4f", r.heads[k].*c.field);
        std::printf("\n");
    }
    struct Rank {
        const char* name;
        double HeadScores::*field;
        bool descending;
    };
    const Rank ranks[] = {{"previous-token", &HeadScores::prev_token, true}, {"induction", &HeadScores::induction, true},
                          {"duplicate-token", &HeadScores::dup_token, true}, {"sink", &HeadScores::sink, true},
                          {"lowest entropy", &HeadScores::entropy, false},   {"longest distance", &HeadScores::distance, true}};
    std::printf("\ntop heads:\n");
    for (const Rank& rk : ranks) {
        std::printf("  %-17s", rk.name);
        const auto idx = ranked(r, rk.field, rk.descending);
        for (int i = 0; i < top && i < int(idx.size()); ++i)
            std::printf("%s %s %.3f", i ? "," : "", label(r, idx[size_t(i)]).c_str(), r.heads[size_t(idx[size_t(i)])].*rk.field);
        std::printf("\n");
    }
    if (r.similarity_rows > 0) {
        const int64_t K = int64_t(r.heads.size());
        std::vector<std::pair<double, std::pair<int64_t, int64_t>>> pairs;
        for (int64_t a = 0; a < K; ++a)
            for (int64_t b = a + 1; b < K; ++b) pairs.push_back({r.similarity[size_t(a * K + b)], {a, b}});
        const size_t n = std::min(pairs.size(), size_t(top));
        std::partial_sort(pairs.begin(), pairs.begin() + long(n), pairs.end());
        std::printf("  %-17s", "most similar");
        for (size_t i = 0; i < n; ++i)
            std::printf("%s %s~%s %.3f", i ? "," : "", label(r, pairs[i].second.first).c_str(),
                        label(r, pairs[i].second.second).c_str(), pairs[i].first);
        std::printf("   (mean JS divergence, nats)\n");
    }
}

void write_csv(const std::string& path, const HeadStatsReport& r) {
    std::string s = "layer,head,name";
    for (const Column& c : kColumns) s += std::string(",") + c.key;
    s += "\n";
    for (size_t k = 0; k < r.heads.size(); ++k) {
        s += std::to_string(k / size_t(r.n_head)) + "," + std::to_string(k % size_t(r.n_head)) + "," + label(r, int64_t(k));
        for (const Column& c : kColumns) s += "," + num(r.heads[k].*c.field, "%.9g");
        s += "\n";
    }
    write_file_atomically(path, s);
}

void write_json(const std::string& path, const Model& model, const HeadStatsReport& r, const HeadsText& text,
                int64_t window, size_t n_windows, const std::vector<std::vector<int32_t>>& induction, int64_t R) {
    Json j = Json::object();
    j["model"] = model.gguf().get_string("general.name", "");
    j["source"] = text.source;
    j["tokens"] = text.ids.size();
    j["window"] = window;
    j["windows"] = n_windows;
    j["bos"] = text.bos;
    j["n_layer"] = r.n_layer;
    j["n_head"] = r.n_head;
    j["rows"] = {{"text", r.text_rows}, {"dup", r.dup_rows}, {"induction", r.induction_rows}, {"similarity", r.similarity_rows}};
    j["definitions"] = kDefinitions;
    Json heads = Json::array();
    for (size_t k = 0; k < r.heads.size(); ++k) {
        Json h = {{"layer", k / size_t(r.n_head)}, {"head", k % size_t(r.n_head)}, {"name", label(r, int64_t(k))}};
        for (const Column& c : kColumns) h[c.key] = json_rounded(r.heads[k].*c.field, 9);
        heads.push_back(std::move(h));
    }
    j["heads"] = std::move(heads);
    const size_t K = r.heads.size();
    Json matrix = Json::array();
    for (size_t a = 0; a < K; ++a) {
        Json row = Json::array();
        for (size_t b = 0; b < K; ++b) row.push_back(json_rounded(r.similarity[a * K + b], 6));
        matrix.push_back(std::move(row));
    }
    j["similarity"] = {{"measure", "mean Jensen-Shannon divergence, nats"}, {"matrix", std::move(matrix)}};
    j["induction"] = {{"length", R}, {"sequences", induction}};
    write_file_atomically(path, json_dump(j) + "\n");
}

void write_svg(const std::string& path, const Model& model, const HeadStatsReport& r) {
    std::vector<std::string> names;
    for (size_t k = 0; k < r.heads.size(); ++k) names.push_back(label(r, int64_t(k)));
    std::vector<SvgPanel> panels;
    for (const Column& c : kColumns) {
        std::vector<double> values;
        for (const HeadScores& s : r.heads) values.push_back(s.*c.field);
        SvgHeatmap hm = head_grid(c.key, r.n_layer, r.n_head, values);
        if (c.field != &HeadScores::entropy && c.field != &HeadScores::distance) hm.vmin = 0, hm.vmax = 1;
        panels.push_back(render_heatmap(hm));
    }
    if (r.similarity_rows > 0) {
        SvgHeatmap hm;
        hm.title = "head similarity: mean JS divergence, nats (bright = similar)";
        const int64_t K = int64_t(r.heads.size());
        hm.rows = hm.cols = K;
        hm.values = r.similarity;
        for (int64_t a = 0; a < K; ++a)
            for (int64_t b = 0; b < K; ++b) hm.cell_labels.push_back(names[size_t(a)] + " ~ " + names[size_t(b)]);
        hm.row_labels = hm.col_labels = names;
        hm.cell = int(std::clamp<int64_t>(720 / std::max<int64_t>(K, 1), 3, 24));
        hm.vmin = 0;
        hm.vmax = std::log(2.0);
        hm.reverse = true;
        panels.push_back(render_heatmap(hm));
    }
    write_file_atomically(path, svg_document(panels, "minigpt heads stats: " + model.gguf().get_string("general.name", "model")));
}

}  // namespace

int heads_stats(int argc, char** argv) {
    Options opts =
        command_options(argv[0], std::string("Per-head attention statistics over a text.\n\n") + kDefinitions);
    add_model_option(opts);
    add_heads_text_options(opts, "analyse");
    add_threads_option(opts);
    opts.add_options()("induction-len", "R, random tokens repeated for the induction score (capped at (context-1)/2)",
                       number_value("50"), "R")(
        "induction-seqs", "random sequences averaged for the induction score", number_value("4"), "N")(
        "s,seed", "seed of the random induction sequences", number_value("1"), "N")(
        "sim-rows", "query rows per window compared for head similarity (0: skip)", number_value("32"), "N")(
        "top", "heads listed per category", number_value("5"), "N")(
        "csv", "write the per-head table as CSV", text_value(), "FILE")(
        "json", "write everything (table, similarity matrix, induction ids) as JSON", text_value(),
        "FILE")("svg", "write heat maps (layer x head per statistic, head x head similarity) as SVG",
                text_value(), "FILE");
    ParsedFlags args;
    if (!parse_flags(opts, argc, argv, args)) return 0;
    const std::string model_path = required_option(args, "model", "-m/--model");
    const int threads = threads_option(args);
    const int64_t sim_rows = int_option(args, "sim-rows", at_least(0));
    const int64_t seqs = int_option(args, "induction-seqs", at_least(0));
    const int64_t induction_len = int_option(args, "induction-len", at_least(1));
    const int64_t seed = int_option(args, "seed", at_least(0));
    const int top = int(int_option(args, "top", between(0, 1000000)));

    auto model = Model::load(model_path);
    const HeadsText text = load_heads_windows(*model, args);
    int32_t bos = 0;
    const std::vector<int32_t> allowed = induction_vocabulary(*model, bos);
    const int64_t R = std::min(induction_len, (model->config().n_ctx - 1) / 2);
    const auto induction = seqs > 0 ? make_induction_sequences(allowed, bos, R, seqs, uint64_t(seed))
                                    : std::vector<std::vector<int32_t>>{};

    std::fprintf(stderr, "%s: %zu tokens in %zu window(s) of up to %lld; induction: %lld x (BOS + %lld + %lld)\n",
                 text.source.c_str(), text.ids.size(), text.windows.size(), (long long)text.window, (long long)seqs,
                 (long long)R, (long long)R);
    HeadsProgress progress("heads stats", int64_t(text.windows.size() + induction.size()));
    HeadStatsOptions so;
    so.sim_rows = sim_rows;
    so.n_threads = threads;
    const HeadStatsReport rep = run_head_stats(*model, text.windows, induction, so, progress.callback());
    progress.finish("done");

    print_report(rep, top);
    if (has(args, "csv")) write_csv(args.value("csv"), rep);
    if (has(args, "json"))
        write_json(args.value("json"), *model, rep, text, text.window, text.windows.size(), induction, R);
    if (has(args, "svg")) write_svg(args.value("svg"), *model, rep);
    return 0;
}

}  // namespace minigpt::cli
