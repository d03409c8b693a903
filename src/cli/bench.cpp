#include "cli/bench.h"
#include "kernels/blas.h"
#include "util/read_file.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <numeric>
#include <random>
#include <sstream>
#include <thread>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>
#include <cstdlib>
#include <vector>

#include <nlohmann/json.hpp>

#include "format/gguf.h"
#include "format/gguf_writer.h"
#include "kernels/kernels.h"
#include "util/thread_pool.h"
#include "runtime/transformer.h"
#include "util/json.h"

namespace minigpt {

namespace {
double now_s() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}
std::vector<int32_t> bench_tokens(int64_t n, int64_t vocab) {
    std::mt19937 rng(1234);
    std::uniform_int_distribution<int32_t> u(0, int32_t(vocab - 1));
    std::vector<int32_t> ids(static_cast<size_t>(n));
    for (auto& x : ids) x = u(rng);
    return ids;
}
}  // namespace

Stats Stats::of(std::vector<double> v) {
    Stats s;
    if (v.empty()) return s;
    std::sort(v.begin(), v.end());
    const size_t n = v.size();
    s.median = n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
    s.min = v.front();
    s.max = v.back();
    return s;
}

std::vector<double> bench_prefill(const Model& m, int64_t n_tokens, int n_threads, int runs) {
    TransformerOptions o;
    o.n_threads = n_threads;
    o.n_batch = n_tokens;
    o.n_ctx = std::max<int64_t>(n_tokens, 1);
    Transformer t(m, o);
    const auto ids = bench_tokens(n_tokens, m.config().n_vocab);
    std::vector<double> out;
    for (int r = -1; r < runs; ++r) {  // run -1 is the warm-up
        t.reset();
        const double t0 = now_s();
        t.forward(ids.data(), n_tokens);
        const double dt = now_s() - t0;
        if (r >= 0) out.push_back(double(n_tokens) / dt);
    }
    return out;
}

std::vector<double> bench_decode(const Model& m, int64_t n_tokens, int n_threads, int runs,
                                 const std::function<void()>& around) {
    TransformerOptions o;
    o.n_threads = n_threads;
    o.n_batch = 1;
    o.n_ctx = n_tokens;
    Transformer t(m, o);
    const auto ids = bench_tokens(n_tokens, m.config().n_vocab);
    std::vector<double> out;
    for (int r = -1; r < runs; ++r) {
        t.reset();
        if (r >= 0 && around) around();
        const double t0 = now_s();
        for (int64_t i = 0; i < n_tokens; ++i) t.forward(&ids[size_t(i)], 1);
        const double dt = now_s() - t0;
        if (r >= 0) out.push_back(double(n_tokens) / dt);
    }
    if (around) around();
    return out;
}

double roofline_bandwidth(int n_threads) {
    // In minutes when this VM's memory was contended, the decoding kernels read a fresh
    // buffer up to a third faster than every STREAM-style pattern of the probe (one
    // thread, f16 kernel: 39-41 GB/s against 28-31, 2026-12-07 13:40 UTC), and the
    // rows of such a minute showed decoding above 100 %. Their reads are patterns too.
    std::vector<ReadPattern> kernel_reads;
    for (KernelIsa isa : {KernelIsa::Avx512, KernelIsa::Avx2}) {
        const KernelTable* kt = kernels_for(isa);
        if (!kt) continue;
        for (DType type : {DType::F32, DType::F16, DType::Q8_0})
            kernel_reads.push_back([kt, type](const float* p, int64_t n) {
                // The buffer as the rows of matrices of 768 columns and kSlice rows (as
                // large as a layer's), times a vector.
                constexpr int64_t cols = 768, kSlice = 4096;
                const int64_t ld = dtype_row_bytes(type, cols), rows = n * int64_t(sizeof(float)) / ld;
                const std::vector<float> x(static_cast<size_t>(cols), 1.f);
                std::vector<float> y(static_cast<size_t>(kSlice));
                float sum = 0;
                for (int64_t r0 = 0; r0 < rows; r0 += kSlice) {
                    const Matrix slice{type, std::min(kSlice, rows - r0), cols, reinterpret_cast<const uint8_t*>(p) + r0 * ld};
                    gemv_rows_with(*kt, y.data(), slice, x.data(), 0, slice.rows);
                    sum += y[0];
                }
                return sum;
            });
    }
    return measure_read_bandwidth(n_threads, 5, kernel_reads);
}

double decode_bytes_per_token(const Model& m, int64_t pos, double kv_bytes_per_value) {
    const Config& c = m.config();
    const double kv = 2.0 * double(c.n_layer) * double(pos + 1) * double(c.n_embd) * kv_bytes_per_value;
    return double(m.weight_bytes_per_token()) + kv;
}

namespace {

// Runs a shell command; returns its exit status and stdout+stderr.
int run_command(const std::string& cmd, std::string* output) {
    output->clear();
    FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
    if (!p) return -1;
    char buf[4096];
    size_t got;
    while ((got = std::fread(buf, 1, sizeof buf, p)) > 0) output->append(buf, got);
    return ::pclose(p);
}

std::string shell_quote(const std::string& s) {
    std::string q = "'";
    for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return q + "'";
}

std::string last_line(const std::string& s) {
    size_t end = s.find_last_not_of("\n");
    if (end == std::string::npos) return "";
    size_t begin = s.rfind('\n', end);
    return s.substr(begin == std::string::npos ? 0 : begin + 1, end + 1 - (begin == std::string::npos ? 0 : begin + 1));
}

// A member of an engine's JSON report: the number, or NaN when it is missing or not a number.
double report_number(const Json& report, const char* key) {
    const Json* v = json_find(report, key);
    return v && v->is_number() ? v->get<double>() : std::nan("");
}

// A string member of an engine's JSON report, or "" when it is missing or not a string.
std::string report_string(const Json& report, const char* key) {
    const Json* v = json_find(report, key);
    return v && v->is_string() ? v->get<std::string>() : std::string();
}

// Runs cmd; its last output line is a JSON object (our scripts' --json, llama-bench's
// -o jsonl), returned in *report. Not ok, with the reason in detail, when cmd fails or
// that line is not a JSON object.
ExternalResult run_json_script(const std::string& cmd, Json* report) {
    ExternalResult r;
    std::string out;
    const int status = run_command(cmd, &out);
    const std::string line = last_line(out);
    if (status != 0 || line.empty() || line[0] != '{') {
        r.detail = line.empty() ? "no output" : line;
        return r;
    }
    try {
        *report = json_parse(line, "the last line of `" + cmd + "`");
    } catch (const std::runtime_error& e) {
        r.detail = e.what();
        return r;
    }
    r.ok = report->is_object();
    if (!r.ok) r.detail = "not a JSON object: " + line;
    return r;
}

}  // namespace

namespace {
// This binary's path (the bench runs it as a child).
std::string self_path() {
    char self[4096];
    const ssize_t n = ::readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) throw std::runtime_error("bench: cannot find this binary (/proc/self/exe)");
    return std::string(self, size_t(n));
}
}  // namespace

namespace {
double thread_cpu_s() {
    timespec ts{};
    ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}
// User + system seconds of the children waited for so far.
double children_cpu_s() {
    rusage ru{};
    ::getrusage(RUSAGE_CHILDREN, &ru);
    return double(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) + 1e-6 * double(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}
}  // namespace

TokenizeCommandBench bench_tokenize_command(const Tokenizer& tok, const std::string& text, const std::string& vocab,
                                            const std::string& merges, const std::string& text_path, int runs) {
    const std::string base = shell_quote(self_path()) + " tokenize --vocab " + shell_quote(vocab) + " --merges " +
                             shell_quote(merges);
    const std::string whole = base + " -f " + shell_quote(text_path) + " >/dev/null";
    const std::string word = base + " -p hello >/dev/null";
    const double mb = double(text.size()) / 1e6;
    std::vector<double> enc, enc_cpu, proc, proc_cpu;
    std::string out;
    // Wall and CPU seconds of one child command.
    auto child = [&](const std::string& cmd, double* cpu) {
        const double t0 = now_s(), c0 = children_cpu_s();
        if (run_command(cmd, &out) != 0) throw std::runtime_error("bench: `" + cmd + "` failed: " + last_line(out));
        *cpu = children_cpu_s() - c0;
        return now_s() - t0;
    };
    for (int r = -1; r < runs; ++r) {  // round -1 is the warm-up
        const double t0 = now_s(), c0 = thread_cpu_s();
        const size_t n = tok.encode(text).size();
        const double t_enc = now_s() - t0, c_enc = thread_cpu_s() - c0;
        double c_whole = 0, c_word = 0;
        const double t_whole = child(whole, &c_whole);
        const double t_word = child(word, &c_word);
        if (r < 0 || (n == 0 && !text.empty())) continue;
        enc.push_back(mb / t_enc);
        enc_cpu.push_back(mb / c_enc);
        if (t_whole > t_word) proc.push_back(mb / (t_whole - t_word));
        if (c_whole > c_word) proc_cpu.push_back(mb / (c_whole - c_word));
    }
    return {Stats::of(enc), Stats::of(proc), Stats::of(enc_cpu), Stats::of(proc_cpu)};
}

ScratchFolder::ScratchFolder(const std::string& prefix) {
    std::string dir_template = "/tmp/" + prefix + "-XXXXXX";
    if (!::mkdtemp(dir_template.data())) throw std::runtime_error("bench: cannot create a scratch folder in /tmp");
    path_ = dir_template;
}

ScratchFolder::~ScratchFolder() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
}

std::vector<std::vector<double>> bench_generate_variants(const std::string& model_path,
                                                         const std::vector<std::string>& variants,
                                                         int64_t n_tokens, int n_threads, int runs) {
    const std::string self = self_path();
    const ScratchFolder dir;
    std::vector<std::vector<double>> speeds(variants.size());
    for (int round = -1; round < runs; ++round) {
        for (size_t v = 0; v < variants.size(); ++v) {
            std::string extra = variants[v];
            for (size_t at; (at = extra.find("{dir}")) != std::string::npos;) extra.replace(at, 5, dir.path());
            const std::string cmd = "{ " + shell_quote(self) + " generate -m " + shell_quote(model_path) +
                                    " -p 'The old man looked at the' --temp 0 --ignore-eos --stats -n " +
                                    std::to_string(n_tokens) + " -t " + std::to_string(n_threads) + " " + extra +
                                    " >/dev/null; }";  // the text goes nowhere, --stats (stderr) to us
            std::string out;
            const int status = run_command(cmd, &out);
            const size_t at = out.find("decode ");
            const size_t paren = at == std::string::npos ? at : out.find('(', at);
            if (status != 0 || paren == std::string::npos)
                throw std::runtime_error("bench: generate " + extra + " failed: " + last_line(out));
            if (round >= 0) speeds[v].push_back(std::strtod(out.c_str() + paren + 1, nullptr));
        }
    }
    return speeds;
}

FirstTokenBench bench_first_token(const std::string& model_path, const std::string& llama_simple, int runs) {
    static const char* kPrompt = "The meaning of life is";  // 5 GPT-2 tokens
    // The text goes nowhere, --stats (stderr) to us.
    const std::string ours = "{ " + shell_quote(self_path()) + " generate -m " + shell_quote(model_path) + " -p " +
                             shell_quote(kPrompt) + " -n 1 --temp 0 --stats >/dev/null; }";
    const std::string theirs = "{ " + shell_quote(llama_simple) + " -m " + shell_quote(model_path) + " -n 1 " +
                               shell_quote(kPrompt) + " >/dev/null; }";
    // The number after `label` in --stats' report, or NaN.
    auto stat = [](const std::string& out, const std::string& label) {
        const size_t at = out.find(label);
        return at == std::string::npos ? std::nan("") : std::strtod(out.c_str() + at + label.size(), nullptr);
    };
    FirstTokenBench b;
    b.llama_ok = !llama_simple.empty();
    if (!b.llama_ok) b.llama_detail = "no llama-simple next to --llama-bench";
    std::vector<double> whole, load, first, llama;
    std::string out;
    for (int r = -1; r < runs; ++r) {  // round -1 is the warm-up (and brings the file into the cache)
        double t0 = now_s();
        if (run_command(ours, &out) != 0) throw std::runtime_error("bench: `" + ours + "` failed: " + last_line(out));
        const double t_ours = now_s() - t0;
        const double l = stat(out, "load: "), f = stat(out, "time to first token: ");
        if (std::isnan(l) || std::isnan(f)) throw std::runtime_error("bench: no --stats from `" + ours + "`");
        if (b.llama_ok) {
            t0 = now_s();
            if (run_command(theirs, &out) != 0) {
                b.llama_ok = false;
                b.llama_detail = "llama-simple failed: " + last_line(out);
            }
            if (r >= 0) llama.push_back(1e3 * (now_s() - t0));
        }
        if (r < 0) continue;
        whole.push_back(1e3 * t_ours);
        load.push_back(l);
        first.push_back(f);
    }
    b.whole = Stats::of(whole);
    b.load = Stats::of(load);
    b.first_token = Stats::of(first);
    if (b.llama_ok) b.llama_whole = Stats::of(llama);
    return b;
}

std::string machine_description() {
    const std::string cpuinfo = read_file("/proc/cpuinfo");
    auto field = [&](const std::string& key) {
        const size_t at = cpuinfo.find("\n" + key);
        if (at == std::string::npos) return std::string();
        const size_t colon = cpuinfo.find(':', at), end = cpuinfo.find('\n', colon);
        return cpuinfo.substr(colon + 2, end - colon - 2);
    };
    std::string model = field("model name");
    const std::string flags = " " + field("flags") + " ";
    std::string have;
    for (const char* f : {"avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx_vnni", "avx2", "fma", "f16c"})
        if (flags.find(std::string(" ") + f + " ") != std::string::npos) have += std::string(have.empty() ? "" : " ") + f;
    std::ostringstream s;
    s << (model.empty() ? "unknown CPU" : model) << "; " << std::thread::hardware_concurrency() << " logical CPUs; "
      << (have.empty() ? "no AVX2" : have) << "; minigpt kernels: " << kernel_isa()
      << "; OpenBLAS core: " << blas::core_name();
    return s.str();
}

bool add_gpt2_tokenizer(const std::string& gguf_path, const TokenizerSpec& spec) {
    GGUFFile src(gguf_path);
    if (src.find("tokenizer.ggml.model")) return false;
    GGUFWriter w;
    for (const auto& kv : src.metadata()) w.set_value(kv.first, kv.second);
    w.set_string("tokenizer.ggml.model", "gpt2");
    w.set_string("tokenizer.ggml.pre", "gpt-2");
    w.set_string_array("tokenizer.ggml.tokens", spec.tokens);
    if (!spec.token_types.empty()) w.set_i32_array("tokenizer.ggml.token_type", spec.token_types);
    w.set_string_array("tokenizer.ggml.merges", spec.merges);
    if (spec.bos_id >= 0) w.set_u32("tokenizer.ggml.bos_token_id", uint32_t(spec.bos_id));
    if (spec.eos_id >= 0) w.set_u32("tokenizer.ggml.eos_token_id", uint32_t(spec.eos_id));
    w.set_bool("tokenizer.ggml.add_bos_token", false);
    for (const GGUFTensor& t : src.tensors())
        w.add_tensor(t.name, t.type, std::vector<int64_t>(t.ne, t.ne + t.n_dims), t.data);
    w.write(gguf_path, src.alignment());  // all-or-nothing: the mapping of the old file stays valid
    return true;
}

ExternalResult bench_llama(const std::string& scripts_dir, const std::string& model_path, const std::string& test,
                           int n_threads, int runs, int64_t n_vocab) {
    Json report;
    ExternalResult r = run_json_script("node " + shell_quote(scripts_dir + "/bench_llama.mjs") + " " +
                                           shell_quote(model_path) + " --test " + test + " --threads " +
                                           std::to_string(n_threads) + " --runs " + std::to_string(runs) + " --vocab " +
                                           std::to_string(n_vocab) + " --json",
                                       &report);
    if (!r.ok) return r;
    r.tok_s.median = report_number(report, "median");
    r.tok_s.min = report_number(report, "min");
    r.tok_s.max = report_number(report, "max");
    r.detail = report_string(report, "build");
    r.ok = r.tok_s.median > 0;
    return r;
}

ExternalResult bench_llama_native(const std::string& llama_bench, const std::string& model_path, const std::string& test,
                                  int n_threads, int runs) {
    const bool pp = test.rfind("pp", 0) == 0;
    const std::string n = test.substr(2);
    Json report;
    ExternalResult r = run_json_script(shell_quote(llama_bench) + " -m " + shell_quote(model_path) + " -t " +
                                           std::to_string(n_threads) + " -r " + std::to_string(runs) +
                                           (pp ? " -p " + n + " -n 0" : " -p 0 -n " + n) + " -o jsonl",
                                       &report);
    if (!r.ok) return r;
    std::vector<double> samples;
    if (const Json* ts = json_find(report, "samples_ts"); ts && ts->is_array())
        for (const Json& v : *ts)
            if (v.is_number()) samples.push_back(v.get<double>());
    r.tok_s = Stats::of(samples);
    r.detail = "llama-bench build " + report_string(report, "build_commit") + " (" + llama_bench + ")";
    r.ok = !samples.empty() && r.tok_s.median > 0;
    return r;
}

Stats bench_tokenizer(const Tokenizer& tok, const std::string& text, int runs) {
    std::vector<double> speeds;
    for (int r = -1; r < runs; ++r) {
        const double t0 = now_s();
        const size_t n = tok.encode(text).size();
        const double dt = now_s() - t0;
        if (n == 0 && !text.empty()) break;
        if (r >= 0) speeds.push_back(double(text.size()) / 1e6 / dt);
    }
    return Stats::of(speeds);
}

ExternalResult bench_tiktoken(const std::string& scripts_dir, const std::string& text_path, int runs) {
    Json report;
    ExternalResult r = run_json_script("node " + shell_quote(scripts_dir + "/bench_tiktoken.mjs") + " " +
                                           shell_quote(text_path) + " --runs " + std::to_string(runs) + " --json",
                                       &report);
    if (!r.ok) return r;
    r.tok_s.median = r.tok_s.min = r.tok_s.max = report_number(report, "mb_per_s");
    r.detail = "tiktoken " + report_string(report, "version");
    r.ok = r.tok_s.median > 0;
    return r;
}

void reset_peak_resident() {
    if (FILE* f = std::fopen("/proc/self/clear_refs", "w")) {
        std::fputs("5", f);
        std::fclose(f);
    }
}

}  // namespace minigpt
