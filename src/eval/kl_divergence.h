// Quantization quality as llama-perplexity measures it (--kl-divergence-base /
// --kl-divergence): a base model's log-probabilities are saved once, then
// another model (e.g. its q8_0 file) is run on the same tokens and compared
// position by position.
//
// The saved file is byte-compatible with llama-perplexity's, so either tool can
// read the other's (same tokens, same context). Layout, little-endian:
//   char[8]  "_logits_"
//   int32    n_ctx, n_vocab, n_chunk
//   int32    tokens[n_chunk * n_ctx]     the text's tokens (BOS not substituted)
//   then per chunk, per scored position (n_ctx - 1 - n_ctx/2 of them), a row of
//   nv = 2 * ((n_vocab + 1) / 2) + 4 uint16:
//     row[0..1] float scale, row[2..3] float min_log_prob, row[4 + i] q_i, with
//     log p_i ~= scale * q_i + min_log_prob (16-bit steps over the 16 nats below
//     the top log-prob; anything lower is stored as the minimum).
// That is half the size of f32 log-probs; the error of a stored log-prob is at
// most scale / 2 <= 16 / 65535 / 2 ~= 1.2e-4 nats.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "format/mapped_file.h"
#include "util/output_file.h"

namespace minigpt {

// Row length in uint16 for a vocabulary of n_vocab tokens.
int64_t log_prob_row_len(int64_t n_vocab);
// Writes one compressed row (log_prob_row_len(n_vocab) uint16) for these logits,
// as llama-perplexity's log_softmax(..., uint16_t*) does.
void compress_log_probs(const float* logits, int64_t n_vocab, uint16_t* row);
// log p_i of a compressed row.
double stored_log_prob(const uint16_t* row, int64_t i);

class LogProbWriter {
public:
    // tokens: n_chunk * n_ctx ids. Written through OutputFile (temporary + rename).
    LogProbWriter(const std::string& path, int64_t n_ctx, int64_t n_vocab, int64_t n_chunk, const int32_t* tokens);
    void add_row(const float* logits);  // one scored position, in chunk order
    void commit();                      // throws unless every row was written
private:
    OutputFile out_;
    int64_t n_vocab_, rows_expected_, rows_ = 0;
    std::vector<uint16_t> row_;
};

class LogProbFile {
public:
    explicit LogProbFile(const std::string& path);  // maps and validates; throws naming the file and field
    int64_t n_ctx() const { return n_ctx_; }
    int64_t n_vocab() const { return n_vocab_; }
    int64_t n_chunk() const { return n_chunk_; }
    int64_t rows_per_chunk() const { return n_ctx_ - 1 - n_ctx_ / 2; }
    const std::vector<int32_t>& tokens() const { return tokens_; }
    // Row k (< rows_per_chunk()) of chunk c.
    const uint16_t* row(int64_t chunk, int64_t k) const;

private:
    std::unique_ptr<MappedFile> file_;
    int64_t n_ctx_ = 0, n_vocab_ = 0, n_chunk_ = 0;
    std::vector<int32_t> tokens_;
    const uint8_t* rows_ = nullptr;
};

// A mean with llama.cpp's uncertainty (0 below 11 samples).
struct MeanErr {
    double mean = 0, err = 0;
};

struct KLReport {
    int64_t count = 0;
    MeanErr ppl, ppl_base, log_ppl_ratio, ppl_ratio, ppl_diff, kld, p_diff, rms_p_diff, same_top;
    double log_ppl_correlation = 0;
    double kld_max = 0, kld_99_9 = 0, kld_99 = 0, kld_95 = 0, kld_90 = 0, kld_median = 0, kld_10 = 0, kld_5 = 0,
           kld_1 = 0, kld_0_1 = 0, kld_min = 0;
    double p_diff_max = 0, p_diff_median = 0, p_diff_min = 0;
};

// Accumulates, over positions, the statistics llama-perplexity's
// --kl-divergence prints. All sums in double.
class KLStats {
public:
    // logits: the model under test; base_row: the base model's compressed row.
    void add(const float* logits, int64_t n_vocab, const uint16_t* base_row, int32_t target);
    int64_t count() const { return count_; }
    KLReport report() const;

private:
    double sum_nll_ = 0, sum_nll2_ = 0, sum_nll_base_ = 0, sum_nll_base2_ = 0, sum_nll_nll_base_ = 0;
    double sum_kld_ = 0, sum_kld2_ = 0, sum_p_diff_ = 0, sum_p_diff2_ = 0, sum_p_diff4_ = 0;
    int64_t same_top_ = 0, count_ = 0;
    std::vector<double> kld_values_, p_diff_values_;
};

// The report as llama-perplexity prints it (its section headers and labels).
std::string format_kl_report(const KLReport& r);

}  // namespace minigpt
