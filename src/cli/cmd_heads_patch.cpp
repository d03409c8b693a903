// minigpt heads patch: activation patching per head (analysis/patching.h):
// how much of a clean run's answer each head's clean z restores in a
// corrupted run.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>


#include "analysis/patching.h"
#include "cli/heads_attribution.h"
#include "cli/heads_common.h"
#include "util/output_file.h"

namespace minigpt::cli {

namespace {

const char* kDefinition =
    "A clean and a corrupted text of the same number of tokens are run; then, for each head, the\n"
    "corrupted run again with that head's z (its attention-weighted values, blocks.L.attn.hook_z,\n"
    "before the output projection) replaced by the clean run's at every position (with\n"
    "--per-position also at one position at a time). The metric, at the last position, is\n"
    "log p(answer), or logit(answer) - logit(wrong) with --wrong. restored = (patched - corrupted) /\n"
    "(clean - corrupted): 1 = the head alone brings the clean answer back, 0 = no effect.\n"
    "Tokens: #ID, or one vocabulary entry's exact text as `minigpt tokenize --pieces` prints it.";

struct Runs {
    std::vector<int32_t> clean, corrupt;
};

// --clean/--corrupt TEXT (through the tokenizer, BOS first when it adds one)
// or --clean-ids/--corrupt-ids; same length, within the context.
Runs read_runs(const Model& model, const Tokenizer& tok, const ParsedFlags& args) {
    const bool text = has(args, "clean") || has(args, "corrupt"), ids = has(args, "clean-ids") || has(args, "corrupt-ids");
    if (text == ids)
        usage_error("give --clean TEXT and --corrupt TEXT, or --clean-ids IDS and --corrupt-ids IDS (one of the two pairs)");
    Runs r;
    const std::string a = text ? "--clean" : "--clean-ids", b = text ? "--corrupt" : "--corrupt-ids";
    if (!has(args, a.substr(2))) usage_error(a + " is required with " + b);
    if (!has(args, b.substr(2))) usage_error(b + " is required with " + a);
    if (text) {
        r.clean = encode_prompt(tok, args.value("clean"), "--clean");
        r.corrupt = encode_prompt(tok, args.value("corrupt"), "--corrupt");
    } else {
        r.clean = parse_ids(args.value("clean-ids"), "clean-ids");
        r.corrupt = parse_ids(args.value("corrupt-ids"), "corrupt-ids");
        check_vocab_ids(r.clean, model.config().n_vocab, a);
        check_vocab_ids(r.corrupt, model.config().n_vocab, b);
    }
    if (r.clean.size() != r.corrupt.size())
        usage_error(a + " and " + b + " differ in length: " + std::to_string(r.clean.size()) + " and " +
                    std::to_string(r.corrupt.size()) + " tokens; patching needs the same number of tokens in both");
    if (int64_t(r.clean.size()) > model.config().n_ctx)
        usage_error(a + ": " + std::to_string(r.clean.size()) + " tokens exceed the model's context of " +
                    std::to_string(model.config().n_ctx));
    return r;
}

std::string num(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.9g", v);
    return buf;
}

std::string head_name(const PatchingReport& r, int64_t k) { return head_label(HeadRef{int(k / r.n_head), int(k % r.n_head)}); }

// The heads that were patched (all, or those of --heads), in layer-major order.
std::vector<int64_t> patched_heads(const PatchingReport& r) {
    std::vector<int64_t> out;
    for (size_t k = 0; k < r.patched.size(); ++k)
        if (!std::isnan(r.patched[k])) out.push_back(int64_t(k));
    return out;
}

void print_report(const PatchingReport& r, const std::string& metric, int64_t top) {
    std::printf("metric: %s at the last position\nclean %.6f, corrupted %.6f (clean - corrupted %.6f)\n\n", metric.c_str(),
                r.clean, r.corrupted, r.clean - r.corrupted);
    std::printf("restored when the head's z is patched at every position:\n%-6s", "layer");
    for (int64_t h = 0; h < r.n_head; ++h) std::printf(" %7s", ("H" + std::to_string(h)).c_str());
    std::printf("\n");
    for (int64_t l = 0; l < r.n_layer; ++l) {
        std::printf("%-6s", ("L" + std::to_string(l)).c_str());
        for (int64_t h = 0; h < r.n_head; ++h) {
            const double v = r.patched[size_t(l * r.n_head + h)];
            if (std::isnan(v)) std::printf(" %7s", "-");  // not in --heads
            else std::printf(" %+7.3f", r.restored(v));
        }
        std::printf("\n");
    }
    const std::vector<int64_t> order = patched_heads(r);
    std::vector<int64_t> sorted = order;
    std::stable_sort(sorted.begin(), sorted.end(), [&](int64_t x, int64_t y) {
        return std::fabs(r.restored(r.patched[size_t(x)])) > std::fabs(r.restored(r.patched[size_t(y)]));
    });
    std::printf("\ntop heads by |restored|:");
    for (int64_t i = 0; i < top && i < int64_t(sorted.size()); ++i)
        std::printf(" %s %+.3f", head_name(r, sorted[size_t(i)]).c_str(), r.restored(r.patched[size_t(sorted[size_t(i)])]));
    std::printf("\n");
}

// head,restored; with --per-position head,pos,restored where pos "all" is the all-positions patch.
void write_csv(const std::string& path, const PatchingReport& r) {
    const bool per_pos = !r.patched_pos.empty();
    std::string s = per_pos ? "head,pos,restored\n" : "head,restored\n";
    const int64_t K = r.n_layer * r.n_head;
    for (int64_t k : patched_heads(r)) {
        s += head_name(r, k) + (per_pos ? ",all," : ",") + num(r.restored(r.patched[size_t(k)])) + "\n";
        for (int64_t p = 0; per_pos && p < r.n_pos; ++p)
            s += head_name(r, k) + "," + std::to_string(p) + "," + num(r.restored(r.patched_pos[size_t(p * K + k)])) + "\n";
    }
    write_file_atomically(path, s);
}

void write_svg(const std::string& path, const PatchingReport& r, const std::string& metric, const std::vector<std::string>& tokens,
               const std::string& model_name) {
    std::vector<double> restored;
    for (double v : r.patched) restored.push_back(r.restored(v));  // NaN (grey): not in --heads
    double limit = 1;  // restored 1 is the reference; larger effects widen the scale
    for (double v : restored)
        if (!std::isnan(v)) limit = std::max(limit, std::fabs(v));
    std::vector<SvgPanel> panels{head_heatmap("restored, head patched at every position", r.n_layer, r.n_head, restored, limit)};
    if (!r.patched_pos.empty()) {
        SvgHeatmap hm;
        hm.title = "restored, head patched at one position";
        const int64_t K = r.n_layer * r.n_head;
        const std::vector<int64_t> heads = patched_heads(r);
        hm.rows = r.n_pos;
        hm.cols = int64_t(heads.size());
        for (int64_t p = 0; p < r.n_pos; ++p) hm.row_labels.push_back(std::to_string(p) + " " + tokens[size_t(p)]);
        for (int64_t k : heads) hm.col_labels.push_back(head_name(r, k));
        for (int64_t p = 0; p < r.n_pos; ++p)
            for (int64_t k : heads) {
                hm.values.push_back(r.restored(r.patched_pos[size_t(p * K + k)]));
                hm.cell_labels.push_back(head_name(r, k) + " at " + std::to_string(p) + " " + tokens[size_t(p)]);
            }
        double lim = 1;
        for (double v : hm.values) lim = std::max(lim, std::fabs(v));
        hm.diverging = true;
        hm.vmin = -lim, hm.vmax = lim;
        hm.cell = int(std::clamp<int64_t>(960 / std::max<int64_t>(hm.cols, 1), 6, 24));
        panels.push_back(render_heatmap(hm));
    }
    write_file_atomically(path, svg_document(panels, "minigpt heads patch: " + model_name + ", " + metric));
}

}  // namespace

int heads_patch(int argc, char** argv) {
    Options opts = command_options(argv[0], std::string("Activation patching per head.\n\n") + kDefinition);
    add_model_option(opts);
    opts.add_options()("clean", "the clean text", text_value(), "TEXT")(
        "corrupt", "the corrupted text (as many tokens as the clean one)", text_value(), "TEXT")(
        "clean-ids", "the clean token ids instead of a text", text_value(), "IDS")(
        "corrupt-ids", "the corrupted token ids", text_value(), "IDS")(
        "answer", "the token whose log-probability (or logit difference) is the metric", text_value(), "TOKEN")(
        "wrong", "metric = logit(answer) - logit(wrong)", text_value(), "TOKEN")(
        "per-position", "also patch each head at each position alone")(
        "heads", "patch only these heads, one by one: L.H,L.* (default: every head)", text_value(), "LIST")(
        "top", "heads listed with the largest |restored|", number_value("10"), "N")(
        "csv", "write head,restored (head,pos,restored with --per-position; pos \"all\" = every position)",
        text_value(), "FILE")(
        "svg", "write the layer x head map (and the position x head map) as SVG", text_value(), "FILE");
    add_threads_option(opts);
    ParsedFlags args;
    if (!parse_flags(opts, argc, argv, args)) return 0;
    const std::string model_path = required_option(args, "model", "-m/--model");
    const std::string answer = required_option(args, "answer", "--answer");
    const int threads = threads_option(args);
    const int64_t top = int_option(args, "top", at_least(0));
    require_file(model_path, "--model");

    const auto [model, spec, tok] = load_model_with_tokenizer(model_path);
    const Config& c = model->config();
    const Runs runs = read_runs(*model, *tok, args);
    PatchMetric metric;
    metric.answer = token_argument(*tok, spec, answer, "--answer");
    std::string what = "log p(" + token_name(*tok, spec, metric.answer) + ")";
    if (has(args, "wrong")) {
        metric.wrong = token_argument(*tok, spec, args.value("wrong"), "--wrong");
        if (metric.wrong == metric.answer) usage_error("--wrong: the same token as --answer");
        what = "logit " + token_name(*tok, spec, metric.answer) + " - logit " + token_name(*tok, spec, metric.wrong);
    }
    PatchingOptions po;
    po.per_position = has(args, "per-position");
    if (has(args, "heads"))
        po.heads = usage_errors("--heads", [&] { return parse_head_list(args.value("heads"), c.n_layer, c.n_head, "--heads"); });
    po.n_threads = threads;
    const int64_t T = int64_t(runs.clean.size()), K = po.heads.empty() ? c.n_layer * c.n_head : int64_t(po.heads.size());
    const std::string name = model->gguf().get_string("general.name", "model");
    std::fprintf(stderr, "%s: %lld tokens, %lld heads patched; %lld runs\n", name.c_str(), (long long)T, (long long)K,
                 (long long)(2 + K + (po.per_position ? K * T : 0)));
    HeadsProgress progress("heads patch", 2 + K + (po.per_position ? K * T : 0));
    const PatchingReport r = run_patching(*model, runs.clean, runs.corrupt, metric, po, progress.callback());
    progress.finish("done");
    print_report(r, what, top);
    std::vector<std::string> tokens;
    for (int64_t p = 0; p < T; ++p) {
        const std::string a = token_name(*tok, spec, runs.clean[size_t(p)]), b = token_name(*tok, spec, runs.corrupt[size_t(p)]);
        tokens.push_back(a == b ? a : a + "/" + b);
    }
    if (has(args, "csv")) write_csv(args.value("csv"), r);
    if (has(args, "svg")) write_svg(args.value("svg"), r, what, tokens, name);
    return 0;
}

}  // namespace minigpt::cli
