// Measurements for `minigpt bench`, following llama-bench's protocol:
// ppN = one batch of N tokens from an empty cache (logits of the last position);
// tgN = N single-token decodes from position 0 (full logits every step).
// Also: the machine's memory read bandwidth (the decode roofline), llama.cpp's
// figures on the same file through node-llama-cpp, and tokenizer speed.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "runtime/model.h"
#include "tokenizer/tokenizer.h"
#include "util/read_bandwidth.h"

namespace minigpt {

struct Stats {
    double median = 0, min = 0, max = 0;  // of the timed runs
    static Stats of(std::vector<double> v);
};

// Tokens per second of each timed run (after one warm-up run). bench_decode calls
// `around` (when given) before each timed run and after the last: the bench's
// bandwidth probe, so that every run has its roofline measured beside it.
std::vector<double> bench_prefill(const Model& m, int64_t n_tokens, int n_threads, int runs);
std::vector<double> bench_decode(const Model& m, int64_t n_tokens, int n_threads, int runs,
                                 const std::function<void()>& around = {});


// The roofline's bandwidth: measure_read_bandwidth with the decoding kernels' own
// reads among its patterns (the f32, f16 and q8_0 matrix-vector kernels of every
// instruction set this CPU runs, over the probe's buffer), so that no kernel can
// read fresh memory faster than the probe does.
double roofline_bandwidth(int n_threads);

// Bytes read from memory per decoded token at position pos: all weights the
// token touches plus the KV cache of the positions before it (kv_bytes_per_value:
// 4 for our f32 cache, 2 for llama.cpp's default f16 cache).
double decode_bytes_per_token(const Model& m, int64_t pos, double kv_bytes_per_value = 4);

// "CPU model; n cores; avx512f avx512_vnni avx2 fma f16c" from /proc/cpuinfo,
// plus the kernels and OpenBLAS core in use.
std::string machine_description();

// Writes the GPT-2 BPE tokenizer (tokenizer.ggml.* keys, as scripts/convert.py
// writes them) into a GGUF that has none, so that llama.cpp can load it.
// Returns false (and leaves the file alone) when it already has one.
bool add_gpt2_tokenizer(const std::string& gguf_path, const TokenizerSpec& spec);

// llama.cpp's figure for one test ("pp512", "tg128") on a GGUF, from
// scripts/bench_llama.mjs (node-llama-cpp). ok is false, with the reason in
// error, when node or node-llama-cpp is missing or the run fails.
struct ExternalResult {
    bool ok = false;
    Stats tok_s;
    std::string detail;  // engine version, or the reason it did not run
};
ExternalResult bench_llama(const std::string& scripts_dir, const std::string& model_path, const std::string& test,
                           int n_threads, int runs, int64_t n_vocab);

// The same from a native llama-bench binary (its own timers and protocol:
// -p N -n 0 for ppN, -p 0 -n N for tgN, -r runs; samples_ts of its JSON lines).
ExternalResult bench_llama_native(const std::string& llama_bench, const std::string& model_path, const std::string& test,
                                  int n_threads, int runs);

// Encoding speed in MB/s (UTF-8 bytes / 1e6 / s), median of `runs` after a warm-up.
Stats bench_tokenizer(const Tokenizer& tok, const std::string& text, int runs);
// The in-process encoder against the whole `minigpt tokenize --vocab V --merges M -f TEXT
// > /dev/null` process (this binary, run as a child) on the same text, interleaved round
// by round: each round encodes `text` in this process, then runs the command on the file
// and on one word (which loads the same tokenizer); the process figure is TEXT's MB over
// the time beyond the one-word run's. Wall-clock MB/s, and MB per CPU second (user +
// system, of this thread or of the children), which a loaded machine disturbs less.
struct TokenizeCommandBench {
    Stats encoder, process;          // MB/s, wall clock
    Stats encoder_cpu, process_cpu;  // MB per CPU second
};
TokenizeCommandBench bench_tokenize_command(const Tokenizer& tok, const std::string& text, const std::string& vocab,
                                            const std::string& merges, const std::string& text_path, int runs);
// tiktoken's (npm) single-thread GPT-2 encoding speed, from scripts/bench_tiktoken.mjs.
ExternalResult bench_tiktoken(const std::string& scripts_dir, const std::string& text_path, int runs);

// Decode speed of the `generate` command itself (this binary, run as a child with
// --stats): one run per variant and round, variants interleaved so that a noisy
// machine slows them alike. variants[i] are extra arguments ("" = plain); each
// "{dir}" in them becomes a scratch folder that is removed afterwards. Returns
// the decode tokens/s of each variant's timed rounds (after one warm-up round).
std::vector<std::vector<double>> bench_generate_variants(const std::string& model_path,
                                                         const std::vector<std::string>& variants,
                                                         int64_t n_tokens, int n_threads, int runs);

// From the command to the first generated token: `generate -m MODEL -p PROMPT -n 1 --temp 0
// --stats` (this binary, a child, every core) of a 5-token prompt, the file in the page cache:
// the whole process's wall time, and the load time and time to first token its --stats print;
// beside it llama.cpp's llama-simple on the same file and prompt where `llama_simple` names one
// (empty: not run). Rounds interleaved, after one warm-up round; milliseconds.
struct FirstTokenBench {
    Stats whole, load, first_token;
    bool llama_ok = false;
    Stats llama_whole;
    std::string llama_detail;  // why llama-simple did not run
};
FirstTokenBench bench_first_token(const std::string& model_path, const std::string& llama_simple, int runs);

// A folder in /tmp for a measurement's files (mkdtemp, PREFIX-XXXXXX), removed with
// everything in it when the object goes, also when the measurement throws.
class ScratchFolder {
public:
    explicit ScratchFolder(const std::string& prefix = "minigpt-bench");
    ~ScratchFolder();
    ScratchFolder(const ScratchFolder&) = delete;
    ScratchFolder& operator=(const ScratchFolder&) = delete;
    const std::string& path() const { return path_; }

private:
    std::string path_;
};

// Resets the peak resident memory (VmHWM) to the current resident size (Linux).
void reset_peak_resident();

}  // namespace minigpt
