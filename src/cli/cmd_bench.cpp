// minigpt bench: prefill and decode speed by weight type and thread count, with
// the memory-bandwidth roofline for decoding, llama.cpp's figures on the same
// files run interleaved (when node-llama-cpp is installed), GPT-2 BPE encoding
// speed next to tiktoken's, and peak resident memory (see src/cli/bench.h).
#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <sstream>

#include "cli/args.h"
#include "cli/bench.h"
#include "cli/commands.h"
#include "format/mapped_file.h"
#include "kernels/kernels.h"
#include "tokenizer/gpt2_files.h"
#include "util/huge_pages.h"
#include "util/memory_usage.h"
#include "runtime/model.h"
#include "util/output_file.h"
#include "util/read_file.h"
#include "runtime/random_model.h"

namespace minigpt::cli {

namespace {

std::vector<std::string> split(const std::string& s) {
    std::vector<std::string> out;
    std::stringstream ss(s);
    std::string item;
    while (std::getline(ss, item, ','))
        if (!item.empty()) out.push_back(item);
    return out;
}

std::vector<int64_t> split_ints(const std::string& s, const char* option, int64_t min) {
    std::vector<int64_t> out;
    for (const std::string& x : split(s)) {
        size_t used = 0;
        int64_t v = 0;
        try {
            v = std::stoll(x, &used);
        } catch (...) {
            used = 0;
        }
        if (used != x.size() || v < min)
            usage_error(std::string("--") + option + ": \"" + x + "\" is not an integer >= " + std::to_string(min));
        out.push_back(v);
    }
    if (out.empty()) usage_error(std::string("--") + option + ": no values");
    return out;
}

DType parse_type(const std::string& t) {
    if (t == "f32") return DType::F32;
    if (t == "f16") return DType::F16;
    if (t == "q8_0") return DType::Q8_0;
    usage_error("--types: unknown weight type \"" + t + "\" (f32, f16, q8_0)");
}

bool exists(const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0;
}

// Rewrites `path` in 2 MiB pieces before it is measured, so that the weights sit in
// page-cache memory as fresh as the bandwidth probe's, which maps a new buffer each
// time. On our VMs memory that has held a file for a while reads slower, whatever
// the kernel's view of it: files idle for a while are partly evicted (DAMON reclaim)
// and come back in smaller folios (the same f16 file decoded at 171 tok/s from half
// its bytes in 2 MiB pages, 180 from a fresh copy, its first token 3x as slow), and
// even an f32 file wholly in 2 MiB pages, two hours old, took one token's
// matrix-vector products at 29-31 GB/s against 33-38 from a copy made the minute
// before (probe 43 GB/s, same minutes). A freshly written file is what a user
// measures after converting or quantizing; llama.cpp reads the same fresh file.
void refresh_page_cache(const std::string& path) {
    const MappedFile f(path);
    OutputFile out(path);  // a temporary beside it, renamed over it (the mapping keeps the old file)
    for (uint64_t at = 0; at < f.size(); at += kHugePageBytes)
        out.write(f.data() + at, size_t(std::min<uint64_t>(kHugePageBytes, f.size() - at)));
    out.commit();
}

// The bench model: GPT-2-124M-shaped random weights, made once and kept in
// .bench/, with the GPT-2 tokenizer when its files are at hand (llama.cpp
// refuses a GGUF without one).
std::string bench_model(DType type, const TokenizerSpec* tokenizer) {
    ::mkdir(".bench", 0755);
    const std::string path = std::string(".bench/gpt2-124m-random-") + dtype_name(type) + ".gguf";
    if (!exists(path)) {
        std::fprintf(stderr, "bench: writing %s (random GPT-2-124M-shaped weights)...\n", path.c_str());
        write_random_gpt2(path, ModelShape::gpt2_124m(), type, 42);
    }
    if (tokenizer && add_gpt2_tokenizer(path, *tokenizer))
        std::fprintf(stderr, "bench: added the GPT-2 tokenizer to %s (for llama.cpp)\n", path.c_str());
    refresh_page_cache(path);
    return path;
}

std::string fmt(const char* f, double v) {
    char b[64];
    std::snprintf(b, sizeof b, f, v);
    return b;
}

std::string range(const Stats& s) { return fmt("%.1f", s.min) + "–" + fmt("%.1f", s.max); }

struct BenchOptions {
    std::vector<int64_t> threads, prompts;
    int64_t n_gen = 128;
    int runs = 5;  // llama-bench's default (-r 5), and the median of 5 for the first token
    std::string scripts, llama_bench, tokenizer_dir, text, analysis_model, output;
    std::vector<std::string> models;  // -m, else generated from --types
    std::vector<DType> types;
    bool with_llama = true;
};

// Returns false when --help was printed.
bool parse_bench_options(int argc, char** argv, BenchOptions& o) {
    Options opts = command_options(
        argv[0], "Prefill (ppN) and decode (tgN) speed, llama-bench's protocol: one warm-up, then timed runs;\n"
                 "median and range in tokens/s. llama.cpp runs the same test on the same file right after\n"
                 "ours (node-llama-cpp in scripts/llama; skipped when missing) and the ratio is printed.\n"
                 "Decode figures show the memory read bandwidth measured around them and the fraction of\n"
                 "the roofline reached (bytes read per token x tokens/s / bandwidth). Also GPT-2 BPE\n"
                 "encoding MB/s next to tiktoken's (npm) and the peak resident memory per model.");
    add_model_option(opts, "GGUF to measure (default: GPT-2-124M-shaped random models in .bench/, one per type)");
    // -t and -p take lists here, as llama-bench's do.
    opts.add_options()(
        "types", "weight types of the generated models", text_value("f32,f16,q8_0"))(
        "t,threads", "thread counts", text_value("1,2"))(
        "p,n-prompt", "prefill lengths", text_value("128,512"))(
        "n,n-gen", "decode length (0 = skip)", number_value("128"))(
        "r,repetitions", "timed runs per test", number_value("5"))(
        "no-llama", "do not run llama.cpp")(
        "llama-bench", "a native llama-bench binary to run instead of node-llama-cpp (same protocol, its own timers)",
        text_value())(
        "scripts", "folder of bench_llama.mjs and bench_tiktoken.mjs", text_value("scripts"))(
        "tokenizer-dir", "GPT-2 vocab.json + merges.txt (tokenizer bench, and the tokenizer given to llama.cpp)",
        text_value("tests/data/tokenizer/gpt2"))(
        "text", "text file for the tokenizer bench (empty = skip)",
        text_value("tests/data/tokenizer/gpt2_brown.txt"))(
        "analysis-model", "model for the cost of --trace/--attention/--ablate in generate (empty = skip)",
        text_value("model/minigpt-brown.gguf"))(
        "o,output", "also write the markdown report to this file", text_value());
    ParsedFlags args;
    if (!parse_flags(opts, argc, argv, args)) return false;
    o.threads = split_ints(args.value("threads"), "threads", 1);
    o.prompts = split_ints(args.value("n-prompt"), "n-prompt", 1);
    o.n_gen = int_option(args, "n-gen", at_least(0));
    o.runs = int(int_option(args, "repetitions", between(1, 1000)));
    o.scripts = args.value("scripts");
    o.tokenizer_dir = args.value("tokenizer-dir");
    o.text = args.value("text");
    o.analysis_model = args.value("analysis-model");
    o.with_llama = !has(args, "no-llama");
    if (has(args, "llama-bench")) o.llama_bench = args.value("llama-bench");
    if (has(args, "output")) o.output = args.value("output");
    if (has(args, "model")) o.models.push_back(args.value("model"));
    else
        for (const std::string& t : split(args.value("types"))) o.types.push_back(parse_type(t));
    return true;
}

// The markdown report: printed as it grows, kept for -o.
class Report {
public:
    void out(const std::string& line) {
        std::fputs(line.c_str(), stdout);
        std::fflush(stdout);
        md_ << line;
    }
    std::string text() const { return md_.str(); }

private:
    std::ostringstream md_;
};

// One model's rows: our run then llama.cpp's, test by test; the peak RSS over our runs only.
class ModelBench {
public:
    ModelBench(const std::string& path, const BenchOptions& o, Report& report, std::string& llama_note)
        : path_(path), o_(o), report_(report), llama_note_(llama_note), model_(Model::load(path)),
          llama_ok_(o.with_llama), avx2_(kernels_for(KernelIsa::Avx2) != nullptr) {
        type_ = dtype_name(model_->weights().layers[0].attn_qkv.type);
        name_ = model_->gguf().get_string("general.name", path);
    }

    void run() {
        const Config& c = model_->config();
        for (int64_t t : o_.threads) {
            for (int64_t p : o_.prompts) {
                if (p > c.n_ctx) continue;
                const std::string test = "pp" + std::to_string(p);
                const Stats s = ours([&] { return bench_prefill(*model_, p, int(t), o_.runs); });
                const Stats a = avx2([&] { return bench_prefill(*model_, p, int(t), o_.runs); });
                row(test, t, s, a, theirs(test, int(t)), Roofline{});
            }
            if (o_.n_gen > 0 && o_.n_gen <= c.n_ctx) decode_row(t);
        }
    }

    std::string memory_row() const {
        const Config& c = model_->config();
        const double kv = 2.0 * double(c.n_layer) * 512 * double(c.n_embd) * 4;
        const double file = double(model_->gguf().file_size());
        return "| " + type_ + " | " + fmt("%.0f", file / 1048576) + " | " + fmt("%.0f", kv / 1048576) + " | " +
               fmt("%.0f", double(peak_) / 1048576) + " | " + fmt("%.0f", (file + kv) / 1048576 + 64) +
               (double(peak_) < file + kv + 64.0 * 1048576 ? " (below)" : " (ABOVE)") + " |\n";
    }

private:
    template <class F>
    Stats ours(F&& measure) {
        reset_peak_resident();
        const Stats s = Stats::of(measure());
        peak_ = std::max(peak_, peak_resident_bytes());
        return s;
    }

    // The same test with the AVX2 kernels forced (what MINIGPT_ISA=avx2 runs), when
    // the kernels in use are another table: the figure users without AVX-512 get.
    // Empty (median 0) when the CPU has no AVX2 or AVX2 is already in use.
    template <class F>
    Stats avx2(F&& measure) {
        const KernelIsa before = kernels().isa;
        if (!avx2_ || before == KernelIsa::Avx2) return Stats{};
        force_kernel_isa(KernelIsa::Avx2);
        Stats s;
        try {
            s = ours(measure);
        } catch (...) {
            force_kernel_isa(before);
            throw;
        }
        force_kernel_isa(before);
        return s;
    }

    ExternalResult theirs(const std::string& test, int t) {
        if (!llama_ok_) return ExternalResult{};
        ExternalResult r = o_.llama_bench.empty()
                               ? bench_llama(o_.scripts, path_, test, t, o_.runs, model_->config().n_vocab)
                               : bench_llama_native(o_.llama_bench, path_, test, t, o_.runs);
        if (!r.ok) {
            llama_ok_ = false;  // do not retry a failing engine for every test
            llama_note_ = "llama.cpp: not run (" + r.detail + ")";
            std::fprintf(stderr, "bench: %s\n", llama_note_.c_str());
        } else if (llama_note_.empty()) {
            llama_note_ = "llama.cpp: " + r.detail +
                          (o_.llama_bench.empty() ? " (KV cache f16, no flash attention, as llama-bench)" : " (its defaults)");
        }
        return r;
    }

    // Fractions of the roofline of one decode row, and the read bandwidth shown.
    struct Roofline {
        double bw = 0, ours = 0, avx2 = 0, llama = 0;
    };

    // The median over timed runs of tokens/s x bytes per token / the run's roofline,
    // the higher of the probes just before and just after it (bw has one more entry
    // than tok_s); *median_bw, when given, gets the median of those rooflines.
    static double run_fraction(const std::vector<double>& tok_s, const std::vector<double>& bw, double bytes,
                               double* median_bw = nullptr) {
        if (tok_s.empty() || bw.size() != tok_s.size() + 1) return 0;
        std::vector<double> fraction, roof;
        for (size_t i = 0; i < tok_s.size(); ++i) {
            roof.push_back(std::max(bw[i], bw[i + 1]));
            fraction.push_back(tok_s[i] * bytes / roof.back());
        }
        if (median_bw) *median_bw = Stats::of(roof).median;
        return Stats::of(fraction).median;
    }

    void decode_row(int64_t t) {
        const std::string test = "tg" + std::to_string(o_.n_gen);
        // Read bandwidth swings on shared machines, by up to a quarter from one second
        // to the next (the 2-thread probe read 63-85 GB/s within one minute on our VM,
        // 2026-12-07): each timed run is bracketed by probes and measured against the
        // higher one (the conservative choice), and the row shows the median run.
        // The probe's 1 GiB is not counted in the peak resident memory.
        auto probe_into = [this, t](std::vector<double>& bw) {
            return [this, t, &bw] {
                peak_ = std::max(peak_, peak_resident_bytes());
                bw.push_back(roofline_bandwidth(int(t)));
                reset_peak_resident();
            };
        };
        std::vector<double> tok_ours, bw_ours, tok_avx2, bw_avx2;
        const Stats s = ours([&] { return tok_ours = bench_decode(*model_, o_.n_gen, int(t), o_.runs, probe_into(bw_ours)); });
        const Stats a = avx2([&] { return tok_avx2 = bench_decode(*model_, o_.n_gen, int(t), o_.runs, probe_into(bw_avx2)); });
        // llama-bench times its runs itself: its roofline brackets the whole test.
        const double bw_llama = llama_ok_ ? roofline_bandwidth(int(t)) : 0;
        const ExternalResult l = theirs(test, int(t));
        // Average bytes per token over the positions decoded.
        const double bytes = decode_bytes_per_token(*model_, o_.n_gen / 2);
        Roofline f;
        f.ours = run_fraction(tok_ours, bw_ours, bytes, &f.bw);
        f.avx2 = run_fraction(tok_avx2, bw_avx2, bytes);
        if (l.ok)
            f.llama = l.tok_s.median * decode_bytes_per_token(*model_, o_.n_gen / 2, 2.0) /
                      std::max(bw_llama, roofline_bandwidth(int(t)));
        row(test, t, s, a, l, f);
    }

    // "median (min–max)" of the AVX2 run, "= minigpt" when AVX2 is the table in use.
    std::string avx2_cell(const Stats& a) const {
        if (a.median > 0) return fmt("%.1f", a.median) + " (" + range(a) + ")";
        return avx2_ ? "= minigpt" : "no AVX2";
    }

    void row(const std::string& test, int64_t t, const Stats& s, const Stats& a, const ExternalResult& l,
             const Roofline& f) {
        std::string line = "| " + name_ + " | " + type_ + " | " + test + " | " + std::to_string(t) + " | " +
                           fmt("%.1f", s.median) + " | " + range(s) + " | " + avx2_cell(a) + " | ";
        line += l.ok ? fmt("%.1f", l.tok_s.median) + " | " + range(l.tok_s) + " | " +
                           fmt("%.2f×", s.median / l.tok_s.median) + " | "
                     : " |  |  | ";
        if (f.bw > 0) {
            line += fmt("%.1f", f.bw / 1e9) + " | " + fmt("%.0f %%", 100 * f.ours);
            line += f.avx2 > 0 ? fmt(" / %.0f %%", 100 * f.avx2) : std::string(" / —");
            if (l.ok) line += " / " + fmt("%.0f %%", 100 * f.llama);
            // Above 100 % the probe read slower than decoding did (or the model sits in cache).
            if (std::max({f.ours, f.avx2, f.llama}) > 1.0) line += " **above 100 %: the bandwidth probe under-read**";
            line += " |\n";
        } else {
            line += " |  |\n";
        }
        report_.out(line);
    }

    std::string path_;
    const BenchOptions& o_;
    Report& report_;
    std::string& llama_note_;
    std::unique_ptr<Model> model_;
    std::string type_, name_;
    bool llama_ok_;
    bool avx2_;  // this CPU runs the AVX2 kernels
    uint64_t peak_ = 0;
};

// What the attention-head tools cost while decoding: `generate` itself, plain and with each
// analysis flag, interleaved round by round. The plain run attaches no hook, so its speed is
// the forward pass's (compare with tg above); the others pay for what they record.
void bench_analysis_flags(Report& report, const BenchOptions& o) {
    if (o.analysis_model.empty()) return;  // --analysis-model "": skipped, as its help says
    std::vector<std::string> analysis_models;
    if (exists(o.analysis_model)) analysis_models.push_back(o.analysis_model);
    if (!o.models.empty() && (analysis_models.empty() || analysis_models.front() != o.models.front()))
        analysis_models.push_back(o.models.front());
    if (o.n_gen <= 0 || analysis_models.empty()) return;
    const std::vector<std::pair<std::string, std::string>> variants = {
        {"plain", ""},
        {"--trace", "--trace {dir}/t.jsonl"},
        {"--trace --logit-lens", "--trace {dir}/t.jsonl --logit-lens"},
        {"--attention", "--attention {dir}/a.bin"},
        {"--ablate 0.0", "--ablate 0.0"},
    };
    std::vector<std::string> extra;
    for (const auto& v : variants) extra.push_back(v.second);
    const int t = int(o.threads.front());
    report.out("\n| generate, tg" + std::to_string(o.n_gen) + ", " + std::to_string(t) +
               " thread(s) | flags | decode tok/s | range | cost vs plain |\n|---|---|---|---|---|\n");
    for (const std::string& path : analysis_models) {
        const auto model = Model::load(path);
        const int64_t n = std::min<int64_t>(o.n_gen, model->config().n_ctx - 16);
        const auto speeds = bench_generate_variants(path, extra, n, t, o.runs);
        const Stats plain = Stats::of(speeds[0]);
        const std::string name = model->gguf().get_string("general.name", path);
        for (size_t v = 0; v < variants.size(); ++v) {
            const Stats s = Stats::of(speeds[v]);
            report.out("| " + name + " | " + variants[v].first + " | " + fmt("%.1f", s.median) + " | " + range(s) +
                       " | " + (v == 0 ? std::string("—") : fmt("%+.1f %%", 100 * (plain.median / s.median - 1))) +
                       " |\n");
        }
    }
}

// From the command to the first token, each weight type, llama.cpp's llama-simple beside it
// where it sits next to --llama-bench.
void bench_first_tokens(Report& report, const BenchOptions& o) {
    std::string llama_simple;
    if (!o.llama_bench.empty()) {
        const std::string candidate = (std::filesystem::path(o.llama_bench).parent_path() / "llama-simple").string();
        if (exists(candidate)) llama_simple = candidate;
    }
    report.out("\n| first token: `generate -p \"The meaning of life is\" -n 1` | type | whole process ms | range | "
               "--stats load ms | time to first token ms | llama-simple whole process ms | range |\n"
               "|---|---|---|---|---|---|---|---|\n");
    std::string note;
    for (const std::string& path : o.models) {
        const auto model = Model::load(path);
        const std::string name = model->gguf().get_string("general.name", path);
        const std::string type = dtype_name(model->weights().layers.at(0).attn_qkv.type);
        const FirstTokenBench b = bench_first_token(path, llama_simple, o.runs);
        report.out("| " + name + " | " + type + " | " + fmt("%.0f", b.whole.median) + " | " + range(b.whole) + " | " +
                   fmt("%.0f", b.load.median) + " | " + fmt("%.0f", b.first_token.median) + " | " +
                   (b.llama_ok ? fmt("%.0f", b.llama_whole.median) + " | " + range(b.llama_whole) : " | ") + " |\n");
        if (!b.llama_ok) note = b.llama_detail;
    }
    if (!note.empty()) report.out("\nllama-simple: " + note + "\n");
}

// GPT-2 BPE encoding speed next to tiktoken's.
constexpr size_t kLongText = 8u << 20;  // bytes: the whole-process tokenize row's text at least
void bench_tokenizers(Report& report, const BenchOptions& o, const TokenizerSpec* gpt2) {
    if (o.text.empty() || !gpt2 || !exists(o.text)) return;
    const std::string text = read_file(o.text, "--text");
    auto tok = make_tokenizer(*gpt2);
    const Stats ours = bench_tokenizer(*tok, text, 5);
    const ExternalResult tt = bench_tiktoken(o.scripts, o.text, 5);
    report.out("\n| GPT-2 BPE encoding, 1 thread | text | minigpt MB/s | tiktoken MB/s | ratio |\n|---|---|---|---|---|\n");
    report.out("| " + std::string(tt.ok ? tt.detail : "tiktoken: " + tt.detail) + " | " + o.text + " (" +
               fmt("%.2f", double(text.size()) / 1e6) + " MB) | " + fmt("%.1f", ours.median) + " | " +
               (tt.ok ? fmt("%.1f", tt.tok_s.median) + " | " + fmt("%.1f×", ours.median / tt.tok_s.median) : " | ") +
               " |\n");
    // The same text through the whole `minigpt tokenize -f TEXT > /dev/null` process,
    // less a one-word run (the tokenizer's loading): reading, encoding and writing ids,
    // interleaved round by round with the in-process encoder.
    // The whole-process figure is the difference of two process runs; on a 1 MB text that
    // is ~20 ms against two ~50 ms runs, and noise gave 21-70 MB/s. A shorter text is
    // repeated to at least 8 MB (a file in a scratch folder) for this row.
    std::string long_text = text, long_path = o.text;
    std::unique_ptr<ScratchFolder> scratch;
    if (!text.empty() && text.size() < kLongText) {
        while (long_text.size() < kLongText) long_text += text;
        scratch = std::make_unique<ScratchFolder>();
        long_path = scratch->path() + "/text.txt";
        write_file_atomically(long_path, long_text);
    }
    const TokenizeCommandBench c = bench_tokenize_command(*tok, long_text, o.tokenizer_dir + "/vocab.json",
                                                          o.tokenizer_dir + "/merges.txt", long_path, 5);
    const std::string what = long_path == o.text ? o.text
                                                 : o.text + " ×" + std::to_string(long_text.size() / text.size()) + " (" +
                                                       fmt("%.1f", double(long_text.size()) / 1e6) + " MB)";
    report.out("\n| GPT-2 BPE, " + what + " | in-process encoder | `minigpt tokenize -f` process, less a one-word run "
               "| encoder / process |\n|---|---|---|---|\n");
    report.out("| MB/s, wall clock | " + fmt("%.1f", c.encoder.median) + " (" + range(c.encoder) + ") | " +
               fmt("%.1f", c.process.median) + " (" + range(c.process) + ") | " +
               fmt("%.2f×", c.encoder.median / c.process.median) + " |\n");
    report.out("| MB per CPU second | " + fmt("%.1f", c.encoder_cpu.median) + " (" + range(c.encoder_cpu) + ") | " +
               fmt("%.1f", c.process_cpu.median) + " (" + range(c.process_cpu) + ") | " +
               fmt("%.2f×", c.encoder_cpu.median / c.process_cpu.median) + " |\n");
}

}  // namespace

int cmd_bench(int argc, char** argv) {
    BenchOptions o;
    if (!parse_bench_options(argc, argv, o)) return 0;
    std::unique_ptr<TokenizerSpec> gpt2;
    const std::string vocab = o.tokenizer_dir + "/vocab.json", merges = o.tokenizer_dir + "/merges.txt";
    if (exists(vocab) && exists(merges)) gpt2 = std::make_unique<TokenizerSpec>(load_gpt2_files(vocab, merges));
    for (DType type : o.types) o.models.push_back(bench_model(type, gpt2.get()));

    Report report;
    report.out("Machine: " + machine_description() + "\n\n");
    report.out("| model | type | test | threads | minigpt tok/s | range | minigpt AVX2 tok/s (range) | llama.cpp tok/s | "
               "range | ratio | read GB/s | % of roofline (minigpt / AVX2 / llama.cpp) |\n"
               "|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    std::string llama_note = o.with_llama ? "" : "llama.cpp: not run (--no-llama)";
    std::string memory =
        "| type | file MiB | KV cache MiB (ctx 512) | peak RSS MiB | limit (file + KV + 64 MiB) |\n|---|---|---|---|---|\n";
    for (const std::string& path : o.models) {
        ModelBench bench(path, o, report, llama_note);
        bench.run();
        memory += bench.memory_row();
    }
    report.out("\n" + (llama_note.empty() ? std::string("llama.cpp: not run") : llama_note) + "\n\n");
    report.out("Roofline: bytes a token reads (weights + KV cache) x tokens/s over the read bandwidth probe "
               "(util/read_bandwidth.h). Each of minigpt's timed runs is measured against the higher of the probes "
               "just before and just after it, and the row shows the median run (read GB/s: the median of those "
               "probes); llama.cpp's test, timed by itself, against probes just before and after the whole test.\n\n");
    report.out("Peak resident memory during minigpt's runs of each model (the bandwidth buffer excluded):\n\n" + memory);
    bench_first_tokens(report, o);
    bench_analysis_flags(report, o);
    bench_tokenizers(report, o, gpt2.get());
    if (!o.output.empty()) {
        OutputFile file(o.output);
        file.write(report.text());
        file.commit();
    }
    return 0;
}

namespace {
RegisterCommand reg{"bench", cmd_bench, "measure prefill/decode tokens per second, the memory roofline and llama.cpp's figures",
                    90};
}

}  // namespace minigpt::cli
