// minigpt heads cost: what more attention heads cost at a fixed width, measured
// on this machine with random weights (nothing to download). For each head
// count (and, with --kv-heads, each grouped key/value variant) a GPT-2 of the
// given width and depth is written to a scratch file, loaded, and timed:
//   ppT   prefill of T tokens from an empty cache (logits of the last position)
//   tgT   single-token decoding at the end of a filled context of T positions
//         (full logits every step), with the share of its time spent in attention
//         (the Transformer's profile: scores, softmax, weighted values)
// plus what is exact, not timed: KV cache bytes per token, the bytes of a full
// --attention capture of T tokens (f16 lower triangles, docs/attention-format.md)
// and the peak resident memory of the run.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "cli/args.h"
#include "cli/bench.h"
#include "cli/commands.h"
#include "runtime/model.h"
#include "runtime/profile.h"
#include "runtime/random_model.h"
#include "runtime/transformer.h"
#include "util/memory_usage.h"
#include "util/output_file.h"
#include "util/plot_svg.h"
#include "util/progress.h"

namespace minigpt::cli {

namespace {

struct CostRow {
    int64_t heads = 0, kv_heads = 0, ctx = 0;
    Stats prefill, decode;                 // tokens/s
    double attn_share_decode = 0;          // of decode time, in attention
    double attn_share_prefill = 0;
    uint64_t kv_bytes_per_token = 0;       // f32 cache, all layers, keys and values
    uint64_t capture_bytes = 0;            // f16 lower triangles of every layer and head
    uint64_t peak_rss = 0;                 // of the whole run of this model
};

struct CostOptions {
    ModelShape shape;
    std::vector<int64_t> heads, ctx, kv_heads;
    DType type = DType::F32;
    int threads = 1, runs = 3;
    int64_t decode_steps = 16;
};

double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

double attention_share(const Profile& p) {
    const double total = p.total();
    return total > 0 ? p.seconds[size_t(Part::Attention)] / total : 0.0;
}

// Times one model at every context; one warm-up run, then `runs` timed ones.
void measure_model(const Model& model, const CostOptions& o, int64_t heads, int64_t kv, std::vector<CostRow>& rows) {
    const int64_t max_ctx = *std::max_element(o.ctx.begin(), o.ctx.end());
    Transformer tf(model, TransformerOptions{max_ctx, 512, o.threads});
    std::vector<int32_t> ids(static_cast<size_t>(max_ctx));
    for (size_t i = 0; i < ids.size(); ++i) ids[i] = int32_t((i * 7919 + 13) % size_t(model.config().n_vocab));
    for (int64_t T : o.ctx) {
        CostRow r;
        r.heads = heads, r.kv_heads = kv, r.ctx = T;
        r.kv_bytes_per_token = tf.kv_cache_bytes() / uint64_t(max_ctx);
        r.capture_bytes = 2ull * uint64_t(o.shape.n_layer) * uint64_t(heads) * uint64_t(T) * uint64_t(T + 1) / 2;
        std::vector<double> pp, tg;
        Profile prof_pp, prof_tg;
        const int64_t steps = std::min(o.decode_steps, T - 1);
        for (int run = 0; run <= o.runs; ++run) {
            tf.reset();
            tf.set_profile(run ? &prof_pp : nullptr);
            auto t0 = std::chrono::steady_clock::now();
            tf.forward(ids.data(), T);
            if (run) pp.push_back(double(T) / seconds_since(t0));
            tf.truncate(T - steps);  // the context filled up to T - steps; decode the rest
            tf.set_profile(run ? &prof_tg : nullptr);
            t0 = std::chrono::steady_clock::now();
            for (int64_t i = T - steps; i < T; ++i) tf.forward(&ids[size_t(i)], 1);
            if (run) tg.push_back(double(steps) / seconds_since(t0));
        }
        tf.set_profile(nullptr);
        r.prefill = Stats::of(pp);
        r.decode = Stats::of(tg);
        r.attn_share_prefill = attention_share(prof_pp);
        r.attn_share_decode = attention_share(prof_tg);
        rows.push_back(r);
    }
}

std::vector<CostRow> run_sweep(const CostOptions& o) {
    std::vector<std::pair<int64_t, int64_t>> variants;  // (heads, kv heads)
    for (int64_t h : o.heads) {
        variants.push_back({h, h});
        for (int64_t g : o.kv_heads)
            if (g < h && h % g == 0) variants.push_back({h, g});
    }
    const ScratchFolder dir("minigpt-heads-cost");
    std::vector<CostRow> rows;
    ProgressBar bar("heads cost", int64_t(variants.size()));
    for (size_t i = 0; i < variants.size(); ++i) {
        const auto [h, g] = variants[i];
        bar.update(int64_t(i), std::to_string(h) + " heads, " + std::to_string(g) + " kv");
        ModelShape s = o.shape;
        s.n_head = h;
        s.n_head_kv = g == h ? 0 : g;
        s.n_ctx = *std::max_element(o.ctx.begin(), o.ctx.end());
        const std::string path = dir.path() + "/model.gguf";
        write_random_gpt2(path, s, o.type, 1234 + uint64_t(h), /*with_output=*/false);
        reset_peak_resident();
        const size_t first = rows.size();
        {
            auto model = Model::load(path);
            measure_model(*model, o, h, g, rows);
        }
        const uint64_t peak = peak_resident_bytes();
        for (size_t k = first; k < rows.size(); ++k) rows[k].peak_rss = peak;
        std::filesystem::remove(path);
    }
    bar.finish();
    return rows;
}

std::string format_table(const std::vector<CostRow>& rows, const CostOptions& o) {
    std::string s;
    char line[320];
    std::snprintf(line, sizeof line,
                  "%lld layers, d = %lld, vocabulary %lld, %s weights, %d thread(s), median (min-max) of %d runs\n\n",
                  (long long)o.shape.n_layer, (long long)o.shape.n_embd, (long long)o.shape.n_vocab, dtype_name(o.type),
                  o.threads, o.runs);
    s += line;
    s += "| heads | kv heads | ctx | pp tok/s | pp attn | tg tok/s | tg attn | KV B/token | capture MiB | peak RSS MiB |\n"
         "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n";
    for (const CostRow& r : rows) {
        std::snprintf(line, sizeof line,
                      "| %lld | %lld | %lld | %.0f (%.0f-%.0f) | %.0f %% | %.1f (%.1f-%.1f) | %.0f %% | %llu | %.1f | %.0f |\n",
                      (long long)r.heads, (long long)r.kv_heads, (long long)r.ctx, r.prefill.median, r.prefill.min,
                      r.prefill.max, 100 * r.attn_share_prefill, r.decode.median, r.decode.min, r.decode.max,
                      100 * r.attn_share_decode, (unsigned long long)r.kv_bytes_per_token,
                      double(r.capture_bytes) / (1 << 20), double(r.peak_rss) / (1 << 20));
        s += line;
    }
    return s;
}

std::string format_csv(const std::vector<CostRow>& rows) {
    std::string s =
        "heads,kv_heads,ctx,pp_tok_s,pp_tok_s_min,pp_tok_s_max,pp_attention_share,tg_tok_s,tg_tok_s_min,tg_tok_s_max,"
        "tg_attention_share,kv_bytes_per_token,capture_bytes,peak_rss_bytes\n";
    char line[400];
    for (const CostRow& r : rows) {
        std::snprintf(line, sizeof line, "%lld,%lld,%lld,%.3f,%.3f,%.3f,%.5f,%.3f,%.3f,%.3f,%.5f,%llu,%llu,%llu\n",
                      (long long)r.heads, (long long)r.kv_heads, (long long)r.ctx, r.prefill.median, r.prefill.min,
                      r.prefill.max, r.attn_share_prefill, r.decode.median, r.decode.min, r.decode.max,
                      r.attn_share_decode, (unsigned long long)r.kv_bytes_per_token,
                      (unsigned long long)r.capture_bytes, (unsigned long long)r.peak_rss);
        s += line;
    }
    return s;
}

// Four panels against the head count (ungrouped models), one line per context.
std::string format_svg(const std::vector<CostRow>& rows, const CostOptions& o) {
    struct Panel {
        const char* title;
        const char* y_label;
        double (*value)(const CostRow&);
        bool log_y;
    };
    const Panel panels[] = {
        {"decode (tg) tokens/s", "tokens/s", [](const CostRow& r) { return r.decode.median; }, false},
        {"prefill (pp) tokens/s", "tokens/s", [](const CostRow& r) { return r.prefill.median; }, false},
        {"share of decode time in attention", "share", [](const CostRow& r) { return r.attn_share_decode; }, false},
        {"bytes of a full --attention capture", "bytes", [](const CostRow& r) { return double(r.capture_bytes); }, true},
    };
    std::vector<SvgPanel> out;
    for (const Panel& p : panels) {
        SvgLineChart ch;
        ch.title = p.title;
        ch.x_label = "heads";
        ch.y_label = p.y_label;
        ch.log_x = true;
        ch.log_y = p.log_y;
        for (int64_t T : o.ctx) {
            SvgSeries s;
            s.name = "ctx " + std::to_string(T);
            for (const CostRow& r : rows)
                if (r.ctx == T && r.kv_heads == r.heads) s.x.push_back(double(r.heads)), s.y.push_back(p.value(r));
            ch.series.push_back(s);
        }
        out.push_back(render_line_chart(ch));
    }
    char title[200];
    std::snprintf(title, sizeof title, "The cost of heads: %lld layers, d = %lld, %s, %d thread(s)",
                  (long long)o.shape.n_layer, (long long)o.shape.n_embd, dtype_name(o.type), o.threads);
    return svg_document(out, title, 1100);
}

std::vector<int64_t> int_list(const ParsedFlags& args, const char* name, int64_t min) {
    std::vector<int64_t> out;
    for (int32_t v : parse_ids(args.value(name), name)) {
        if (v < min) usage_error(std::string("--") + name + ": values must be at least " + std::to_string(min));
        out.push_back(v);
    }
    return out;
}

CostOptions parse_cost_options(const ParsedFlags& args) {
    CostOptions o;
    o.shape = ModelShape::gpt2_124m();
    o.shape.n_embd = int_option(args, "n-embd", between(32, 8192));
    o.shape.n_layer = int_option(args, "n-layer", between(1, 128));
    o.shape.n_vocab = int_option(args, "n-vocab", between(2, 1 << 20));
    o.shape.n_ff = 4 * o.shape.n_embd;
    if (o.shape.n_embd % 32 != 0) usage_error("--n-embd: must be a multiple of 32 (q8_0 blocks), got " +
                                              std::to_string(o.shape.n_embd));
    o.heads = int_list(args, "heads", 1);
    o.ctx = int_list(args, "ctx", 2);
    if (has(args, "kv-heads")) o.kv_heads = int_list(args, "kv-heads", 1);
    for (int64_t h : o.heads)
        if (o.shape.n_embd % h != 0)
            usage_error("--heads: " + std::to_string(h) + " does not divide --n-embd " + std::to_string(o.shape.n_embd));
    const std::string type = args.value("type");
    if (type == "f32") o.type = DType::F32;
    else if (type == "f16") o.type = DType::F16;
    else if (type == "q8_0") o.type = DType::Q8_0;
    else usage_error("--type: expected f32, f16 or q8_0, got \"" + type + "\"");
    o.threads = threads_option(args);
    o.runs = int(int_option(args, "repetitions", between(1, 100)));
    o.decode_steps = int_option(args, "n-decode", between(1, 4096));
    return o;
}

}  // namespace

int heads_cost(int argc, char** argv) {
    Options opts = command_options(
        argv[0],
        "What more heads cost at a fixed width, measured here on random weights: prefill (ppT) and decode at the end "
        "of a filled context (tgT) tokens/s with the share of time in attention, KV cache bytes per token (constant at "
        "fixed width; x G/n_head with grouped key/value heads), bytes of a full --attention capture (grows as heads x "
        "T^2) and peak resident memory. One model per head count (and per --kv-heads variant), written to a scratch "
        "file and removed.");
    opts.add_options()("n-embd", "model width d", number_value("768"), "D")(
        "n-layer", "layers", number_value("12"), "N")("n-vocab", "vocabulary (LM head rows)", number_value("50257"), "N")(
        "heads", "head counts to measure (each divides d)", text_value("1,2,3,4,6,8,12,16,24,32,48"), "LIST")(
        "ctx", "contexts T", text_value("128,512,1024"), "LIST")(
        "kv-heads", "also grouped variants with these key/value head counts (where they divide the heads)",
        text_value(), "LIST")(
        "type", "weight type: f32, f16 or q8_0", text_value("f32"), "T")(
        "r,repetitions", "timed runs per figure (after one warm-up)", number_value("3"), "N")(
        "n-decode", "decoded tokens per tg run", number_value("16"), "N")(
        "csv", "write the table as CSV", text_value(), "FILE")(
        "svg", "write the plots (tokens/s, attention share and capture bytes vs heads, a line per context)",
        text_value(), "FILE");
    add_threads_option(opts);
    ParsedFlags args;
    if (!parse_flags(opts, argc, argv, args)) return 0;
    const CostOptions o = parse_cost_options(args);
    const std::vector<CostRow> rows = run_sweep(o);
    std::printf("%s", format_table(rows, o).c_str());
    if (has(args, "csv")) write_file_atomically(args.value("csv"), format_csv(rows));
    if (has(args, "svg")) write_file_atomically(args.value("svg"), format_svg(rows, o));
    return 0;
}

}  // namespace minigpt::cli
