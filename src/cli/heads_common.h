// Shared pieces of the `minigpt heads` subcommands: the text to analyse (a
// file through the model's tokenizer, or raw ids) cut into windows, and a
// progress callback on stderr.
//
//   add_heads_text_options(opts, "analyse");           // -f, --ids, -c, --chunks
//   const HeadsText text = load_heads_windows(*model, args);   // usage errors name the flag
//   check_vocab_ids(ids, cfg.n_vocab, "--ids");        // ids of a flag against the vocabulary
//   render_heatmap(head_grid(title, n_layer, n_head, values));   // a layer x head heat map
#pragma once
#include <algorithm>
#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>


#include "analysis/ablation.h"
#include "cli/args.h"
#include "eval/text_windows.h"
#include "runtime/model.h"
#include "tokenizer/tokenizer.h"
#include "util/plot_svg.h"
#include "util/progress.h"
#include "util/read_file.h"

namespace minigpt::cli {

// Every id of `flag` (--ids, --clean-ids, ...) inside the vocabulary, else a usage error naming the flag.
inline void check_vocab_ids(const std::vector<int32_t>& ids, int64_t n_vocab, const std::string& flag) {
    for (int32_t id : ids)
        if (id < 0 || id >= n_vocab)
            usage_error(flag + ": token id " + std::to_string(id) + " is outside the vocabulary (0.." +
                        std::to_string(n_vocab - 1) + ")");
}

// A layer x head heat map of one value per head (k = layer * n_head + head): rows L0.., columns H0..,
// each cell named L{l}H{h}, cells sized to the head count and showing their values when they fit.
inline SvgHeatmap head_grid(const std::string& title, int64_t n_layer, int64_t n_head, const std::vector<double>& values) {
    SvgHeatmap hm;
    hm.title = title;
    hm.rows = n_layer;
    hm.cols = n_head;
    for (int64_t l = 0; l < n_layer; ++l) hm.row_labels.push_back("L" + std::to_string(l));
    for (int64_t h = 0; h < n_head; ++h) hm.col_labels.push_back("H" + std::to_string(h));
    for (int64_t k = 0; k < n_layer * n_head; ++k) {
        hm.values.push_back(values[size_t(k)]);
        hm.cell_labels.push_back(head_label(HeadRef{int(k / n_head), int(k % n_head)}));
    }
    hm.cell = int(std::clamp<int64_t>(480 / std::max<int64_t>(n_head, 1), 14, 36));
    hm.show_values = hm.cell >= 30;
    return hm;
}

// The token ids of -f FILE (encoded with the model's tokenizer) or --ids, and their windows.
struct HeadsText {
    std::vector<int32_t> ids;
    int32_t bos = -1;  // prepended to every window when the tokenizer adds BOS (SentencePiece), else -1
    std::string source;
    int64_t window = 0;                        // tokens per window (-c)
    std::vector<std::vector<int32_t>> windows;
};

// -f/--file, --ids, -c/--ctx-size and --chunks; `verb` says what is done with the text ("score").
inline void add_heads_text_options(Options& opts, const std::string& verb) {
    add_file_option(opts, "text file to " + verb + " (the model's tokenizer)");
    add_ids_option(opts, "token ids to " + verb + " instead of a file");
    add_ctx_option(opts, "tokens per window; 0 = 512 or the model's context if smaller");
    opts.add_options()("chunks", verb + " at most this many windows (0: all)", number_value("0"), "N");
}

// -c: tokens per window; 0 = 512, or the model's context if that is smaller.
inline int64_t window_size(const ParsedFlags& args, const Config& cfg) {
    const int64_t c = int_option(args, "ctx-size", [](int64_t v) { return v == 0 || v >= 2; },
                                 "must be 0 (512 or the model's context) or at least 2");
    if (c == 0) return std::min<int64_t>(512, cfg.n_ctx);
    check_ctx_size(c, cfg.n_ctx);
    return c;
}

// The text of -f FILE or --ids "ID ID ...", exactly one of them, in windows of -c
// tokens (at most --chunks). Throws when the text has fewer than 2 tokens.
inline HeadsText load_heads_windows(const Model& model, const ParsedFlags& args) {
    const bool has_file = has(args, "file"), has_ids = has(args, "ids");
    if (has_file == has_ids) usage_error("give the text as -f/--file FILE or as --ids \"ID ID ...\" (one of the two)");
    const int64_t chunks = int_option(args, "chunks", at_least(0));
    HeadsText t;
    t.window = window_size(args, model.config());
    if (has_file) {
        t.source = args.value("file");
        const std::unique_ptr<Tokenizer> tok = make_tokenizer(model.tokenizer_spec());
        t.ids = tok->encode(read_file(t.source, "-f/--file"));
        if (tok->add_bos() && tok->bos_id() >= 0) t.bos = tok->bos_id();
        if (t.ids.empty()) throw std::runtime_error(t.source + ": the text has no tokens");
    } else {
        t.ids = parse_ids(args.value("ids"), "ids");
        t.source = "--ids";
        check_vocab_ids(t.ids, model.config().n_vocab, "--ids");
    }
    t.windows = split_windows(t.ids, t.window, t.bos, chunks);
    if (t.windows.empty()) throw std::runtime_error(t.source + ": fewer than 2 tokens: nothing to analyse");
    return t;
}

// A progress callback drawing a bar on stderr (only on a terminal; see progress.h).
class HeadsProgress {
public:
    HeadsProgress(const std::string& label, int64_t total) : bar_(label, total) {}
    std::function<void(int64_t, int64_t)> callback() {
        return [this](int64_t done, int64_t) { bar_.update(done); };
    }
    void finish(const std::string& summary) { bar_.finish(summary); }

private:
    ProgressBar bar_;
};

}  // namespace minigpt::cli
