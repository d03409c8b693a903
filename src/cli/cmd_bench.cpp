// minigpt bench: prefill and decode speed by weight type and thread count, with
// the memory-bandwidth roofline for decoding, llama.cpp's figures on the same
// files run interleaved (when node-llama-cpp is installed), GPT-2 BPE encoding
// speed next to tiktoken's, and peak resident memory (see src/cli/bench.h).
#include <sys/stat.h>

#include <cmath>
#include <cstdio>
#include <cxxopts.hpp>
#include <fstream>
#include <sstream>

#include "cli/bench.h"
#include "cli/commands.h"
#include "tokenizer/gpt2_files.h"
#include "util/memory_usage.h"
#include "runtime/model.h"
#include "util/output_file.h"
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
            throw std::runtime_error(std::string("--") + option + ": \"" + x + "\" is not an integer >= " + std::to_string(min));
        out.push_back(v);
    }
    if (out.empty()) throw std::runtime_error(std::string("--") + option + ": no values");
    return out;
}

DType parse_type(const std::string& t) {
    if (t == "f32") return DType::F32;
    if (t == "f16") return DType::F16;
    if (t == "q8_0") return DType::Q8_0;
    throw std::runtime_error("--types: unknown weight type \"" + t + "\" (f32, f16, q8_0)");
}

bool exists(const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0;
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
    return path;
}

std::string fmt(const char* f, double v) {
    char b[64];
    std::snprintf(b, sizeof b, f, v);
    return b;
}

std::string range(const Stats& s) { return fmt("%.1f", s.min) + "–" + fmt("%.1f", s.max); }

}  // namespace

int cmd_bench(int argc, char** argv) {
    cxxopts::Options opts(argv[0],
                          "Prefill (ppN) and decode (tgN) speed, llama-bench's protocol: one warm-up, then timed runs;\n"
                          "median and range in tokens/s. llama.cpp runs the same test on the same file right after\n"
                          "ours (node-llama-cpp in scripts/llama; skipped when missing) and the ratio is printed.\n"
                          "Decode figures show the memory read bandwidth measured around them and the fraction of\n"
                          "the roofline reached (bytes read per token x tokens/s / bandwidth). Also GPT-2 BPE\n"
                          "encoding MB/s next to tiktoken's (npm) and the peak resident memory per model.");
    opts.add_options()("m,model", "GGUF to measure (default: GPT-2-124M-shaped random models in .bench/, one per type)",
                       cxxopts::value<std::string>())(
        "types", "weight types of the generated models", cxxopts::value<std::string>()->default_value("f32,f16,q8_0"))(
        "t,threads", "thread counts", cxxopts::value<std::string>()->default_value("1,2"))(
        "p,n-prompt", "prefill lengths", cxxopts::value<std::string>()->default_value("128,512"))(
        "n,n-gen", "decode length (0 = skip)", cxxopts::value<int64_t>()->default_value("128"))(
        "r,repetitions", "timed runs per test", cxxopts::value<int>()->default_value("3"))(
        "no-llama", "do not run llama.cpp")(
        "llama-bench", "a native llama-bench binary to run instead of node-llama-cpp (same protocol, its own timers)",
        cxxopts::value<std::string>())(
        "scripts", "folder of bench_llama.mjs and bench_tiktoken.mjs", cxxopts::value<std::string>()->default_value("scripts"))(
        "tokenizer-dir", "GPT-2 vocab.json + merges.txt (tokenizer bench, and the tokenizer given to llama.cpp)",
        cxxopts::value<std::string>()->default_value("tests/data/tokenizer/gpt2"))(
        "text", "text file for the tokenizer bench (empty = skip)",
        cxxopts::value<std::string>()->default_value("tests/data/tokenizer/gpt2_brown.txt"))(
        "analysis-model", "model for the cost of --trace/--attention/--ablate in generate (empty = skip)",
        cxxopts::value<std::string>()->default_value("model/minigpt-brown.gguf"))(
        "o,output", "also write the markdown report to this file", cxxopts::value<std::string>())("h,help", "this help");
    auto args = opts.parse(argc, argv);
    if (args.count("help")) {
        std::printf("%s\n", opts.help().c_str());
        return 0;
    }
    const auto threads = split_ints(args["threads"].as<std::string>(), "threads", 1);
    const auto prompts = split_ints(args["n-prompt"].as<std::string>(), "n-prompt", 1);
    const int64_t n_gen = args["n-gen"].as<int64_t>();
    const int runs = args["repetitions"].as<int>();
    if (runs < 1) throw std::runtime_error("--repetitions must be at least 1");
    if (n_gen < 0) throw std::runtime_error("--n-gen must not be negative");
    const std::string scripts = args["scripts"].as<std::string>();
    const std::string tok_dir = args["tokenizer-dir"].as<std::string>();
    const bool with_llama = !args.count("no-llama");
    const std::string llama_bench = args.count("llama-bench") ? args["llama-bench"].as<std::string>() : "";

    std::unique_ptr<TokenizerSpec> gpt2;
    if (exists(tok_dir + "/vocab.json") && exists(tok_dir + "/merges.txt"))
        gpt2 = std::make_unique<TokenizerSpec>(load_gpt2_files(tok_dir + "/vocab.json", tok_dir + "/merges.txt"));

    std::vector<std::string> models;
    if (args.count("model")) models.push_back(args["model"].as<std::string>());
    else
        for (const std::string& t : split(args["types"].as<std::string>()))
            models.push_back(bench_model(parse_type(t), gpt2.get()));

    std::ostringstream md;
    auto out = [&](const std::string& line) {
        std::fputs(line.c_str(), stdout);
        std::fflush(stdout);
        md << line;
    };
    out("Machine: " + machine_description() + "\n\n");
    out("| model | type | test | threads | minigpt tok/s | range | llama.cpp tok/s | range | ratio | read GB/s | "
        "% of roofline (minigpt / llama.cpp) |\n|---|---|---|---|---|---|---|---|---|---|---|\n");
    std::string llama_note = with_llama ? "" : "llama.cpp: not run (--no-llama)";
    std::ostringstream memory;
    memory << "| type | file MiB | KV cache MiB (ctx 512) | peak RSS MiB | limit (file + KV + 64 MiB) |\n|---|---|---|---|---|\n";

    for (const std::string& path : models) {
        auto model = Model::load(path);
        const std::string type = dtype_name(model->weights().layers[0].attn_qkv.type);
        const std::string name = model->gguf().get_string("general.name", path);
        const Config& c = model->config();
        bool llama_ok = with_llama;
        uint64_t peak = 0;
        // Our run then llama.cpp's, test by test; peak RSS over our runs only.
        auto ours = [&](auto&& measure) {
            reset_peak_resident();
            const Stats s = Stats::of(measure());
            peak = std::max(peak, peak_resident_bytes());
            return s;
        };
        auto theirs = [&](const std::string& test, int t) {
            if (!llama_ok) return ExternalResult{};
            ExternalResult r = llama_bench.empty() ? bench_llama(scripts, path, test, t, runs, c.n_vocab)
                                                   : bench_llama_native(llama_bench, path, test, t, runs);
            if (!r.ok) {
                llama_ok = false;  // do not retry a failing engine for every test
                llama_note = "llama.cpp: not run (" + r.detail + ")";
                std::fprintf(stderr, "bench: %s\n", llama_note.c_str());
            } else if (llama_note.empty()) {
                llama_note = "llama.cpp: " + r.detail +
                             (llama_bench.empty() ? " (KV cache f16, no flash attention, as llama-bench)" : " (its defaults)");
            }
            return r;
        };
        for (int64_t t : threads) {
            auto row = [&](const std::string& test, const Stats& s, const ExternalResult& l, double bw, double bytes,
                           double bytes_llama) {
                std::string line = "| " + name + " | " + type + " | " + test + " | " + std::to_string(t) + " | " +
                                   fmt("%.1f", s.median) + " | " + range(s) + " | ";
                line += l.ok ? fmt("%.1f", l.tok_s.median) + " | " + range(l.tok_s) + " | " +
                                   fmt("%.2f×", s.median / l.tok_s.median) + " | "
                             : " |  |  | ";
                if (bw > 0) {
                    line += fmt("%.1f", bw / 1e9) + " | " + fmt("%.0f %%", 100 * s.median * bytes / bw);
                    if (l.ok) line += " / " + fmt("%.0f %%", 100 * l.tok_s.median * bytes_llama / bw);
                    line += " |\n";
                } else {
                    line += " |  |\n";
                }
                out(line);
            };
            for (int64_t p : prompts) {
                if (p > c.n_ctx) continue;
                const std::string test = "pp" + std::to_string(p);
                const Stats s = ours([&] { return bench_prefill(*model, p, int(t), runs); });
                row(test, s, theirs(test, int(t)), 0, 0, 0);
            }
            if (n_gen > 0 && n_gen <= c.n_ctx) {
                const std::string test = "tg" + std::to_string(n_gen);
                // Bandwidth swings on shared machines: measured before and after
                // the pair, the higher one is the roofline (the conservative choice).
                const double bw_before = measure_read_bandwidth(int(t));
                const Stats s = ours([&] { return bench_decode(*model, n_gen, int(t), runs); });
                const ExternalResult l = theirs(test, int(t));
                const double bw = std::max(bw_before, measure_read_bandwidth(int(t)));
                // Average bytes per token over the positions decoded.
                row(test, s, l, bw, decode_bytes_per_token(*model, n_gen / 2),
                    decode_bytes_per_token(*model, n_gen / 2, 2.0));
            }
        }
        const double kv = 2.0 * double(c.n_layer) * 512 * double(c.n_embd) * 4;
        const double file = double(model->gguf().file_size());
        memory << "| " << type << " | " << fmt("%.0f", file / 1048576) << " | " << fmt("%.0f", kv / 1048576) << " | "
               << fmt("%.0f", double(peak) / 1048576) << " | " << fmt("%.0f", (file + kv) / 1048576 + 64)
               << (double(peak) < file + kv + 64.0 * 1048576 ? " (below)" : " (ABOVE)") << " |\n";
    }
    out("\n" + (llama_note.empty() ? std::string("llama.cpp: not run") : llama_note) + "\n\n");
    out("Peak resident memory during minigpt's runs of each model (the bandwidth buffer excluded):\n\n" + memory.str());

    // What the attention-head tools cost while decoding: `generate` itself, plain and with each
    // analysis flag, interleaved round by round. The plain run attaches no hook, so its speed is
    // the forward pass's (compare with tg above); the others pay for what they record.
    std::vector<std::string> analysis_models;
    if (args["analysis-model"].as<std::string>() != "" && exists(args["analysis-model"].as<std::string>()))
        analysis_models.push_back(args["analysis-model"].as<std::string>());
    if (!models.empty() && (analysis_models.empty() || analysis_models.front() != models.front()))
        analysis_models.push_back(models.front());
    if (n_gen > 0 && !analysis_models.empty()) {
        const std::vector<std::pair<std::string, std::string>> variants = {
            {"plain", ""},
            {"--trace", "--trace {dir}/t.jsonl"},
            {"--trace --logit-lens", "--trace {dir}/t.jsonl --logit-lens"},
            {"--attention", "--attention {dir}/a.bin"},
            {"--ablate 0.0", "--ablate 0.0"},
        };
        std::vector<std::string> extra;
        for (const auto& v : variants) extra.push_back(v.second);
        const int t = int(threads.front());
        out("\n| generate, tg" + std::to_string(n_gen) + ", " + std::to_string(t) +
            " thread(s) | flags | decode tok/s | range | cost vs plain |\n|---|---|---|---|---|\n");
        for (const std::string& path : analysis_models) {
            const auto model = Model::load(path);
            const int64_t n = std::min<int64_t>(n_gen, model->config().n_ctx - 16);
            const auto speeds = bench_generate_variants(path, extra, n, t, runs);
            const Stats plain = Stats::of(speeds[0]);
            const std::string name = model->gguf().get_string("general.name", path);
            for (size_t v = 0; v < variants.size(); ++v) {
                const Stats s = Stats::of(speeds[v]);
                out("| " + name + " | " + variants[v].first + " | " + fmt("%.1f", s.median) + " | " + range(s) + " | " +
                    (v == 0 ? std::string("—") : fmt("%+.1f %%", 100 * (plain.median / s.median - 1))) + " |\n");
            }
        }
    }

    const std::string text_path = args["text"].as<std::string>();
    if (!text_path.empty() && gpt2 && exists(text_path)) {
        std::ifstream f(text_path, std::ios::binary);
        const std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
        auto tok = make_tokenizer(*gpt2);
        const Stats ours = bench_tokenizer(*tok, text, 5);
        const ExternalResult tt = bench_tiktoken(scripts, text_path, 5);
        out("\n| GPT-2 BPE encoding, 1 thread | text | minigpt MB/s | tiktoken MB/s | ratio |\n|---|---|---|---|---|\n");
        out("| " + std::string(tt.ok ? tt.detail : "tiktoken: " + tt.detail) + " | " + text_path + " (" +
            fmt("%.2f", double(text.size()) / 1e6) + " MB) | " + fmt("%.1f", ours.median) + " | " +
            (tt.ok ? fmt("%.1f", tt.tok_s.median) + " | " + fmt("%.1f×", ours.median / tt.tok_s.median) : " | ") +
            " |\n");
    }
    if (args.count("output")) {
        OutputFile file(args["output"].as<std::string>());
        file.write(md.str());
        file.commit();
    }
    return 0;
}

namespace {
RegisterCommand reg{"bench", cmd_bench, "measure prefill/decode tokens per second, the memory roofline and llama.cpp's figures",
                    90};
}

}  // namespace minigpt::cli
