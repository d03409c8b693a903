#include "eval/kl_divergence.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>

namespace minigpt {

namespace {

constexpr char kMagic[8] = {'_', 'l', 'o', 'g', 'i', 't', 's', '_'};
constexpr uint64_t kHeaderBytes = 8 + 3 * 4;

// llama.cpp's mean_and_uncertainty: the standard error of the mean, 0 for tiny samples.
MeanErr mean_and_uncertainty(double sum, double sum2, int64_t count) {
    if (count < 1) return {};
    const double f = sum / double(count);
    double df = sum2 / double(count) - f * f;
    df = df > 0 && count > 10 ? std::sqrt(df / double(count - 1)) : 0.0;
    return {f, df};
}

double covariance(double suma, double sumb, double sumab, int64_t count) {
    if (count < 10) return 0.0;
    const double n = double(count);
    return (sumab / n - (suma / n) * (sumb / n)) / (n - 1);
}

// llama.cpp's percentile: linear interpolation between sorted neighbours.
double percentile(const std::vector<double>& sorted, double fraction) {
    if (sorted.empty()) return 0.0;
    if (fraction <= 0) return sorted.front();
    if (fraction >= 1) return sorted.back();
    double p = fraction * double(sorted.size() - 1);
    const size_t ip = size_t(p);
    p -= double(ip);
    return (1 - p) * sorted[ip] + p * sorted[std::min(ip + 1, sorted.size() - 1)];
}

double median(const std::vector<double>& sorted) {
    if (sorted.empty()) return 0.0;
    const size_t n = sorted.size();
    return n % 2 == 0 ? 0.5 * (sorted[n / 2] + sorted[n / 2 - 1]) : sorted[n / 2];
}

}  // namespace

int64_t log_prob_row_len(int64_t n_vocab) { return 2 * ((n_vocab + 1) / 2) + 4; }

void compress_log_probs(const float* logits, int64_t n_vocab, uint16_t* row) {
    // Float arithmetic on purpose: this is the stored format, made as llama.cpp makes it.
    float max_logit = logits[0], min_logit = logits[0];
    for (int64_t i = 1; i < n_vocab; ++i) {
        max_logit = std::max(max_logit, logits[i]);
        min_logit = std::min(min_logit, logits[i]);
    }
    min_logit = std::max(min_logit, max_logit - 16);
    double sum_exp = 0.0;
    for (int64_t i = 0; i < n_vocab; ++i) sum_exp += std::exp(logits[i] - max_logit);
    const float log_sum_exp = float(std::log(sum_exp));
    const float min_log_prob = min_logit - max_logit - log_sum_exp;
    const float scale = (max_logit - min_logit) / 65535.f;
    std::memcpy(row, &scale, 4);
    std::memcpy(row + 2, &min_log_prob, 4);
    uint16_t* q = row + 4;
    std::fill(q, row + log_prob_row_len(n_vocab), uint16_t(0));
    if (scale != 0.f) {
        const float inv_scale = 1 / scale;
        for (int64_t i = 0; i < n_vocab; ++i)
            if (logits[i] > min_logit) q[i] = uint16_t(std::lrintf(inv_scale * (logits[i] - min_logit)));
    }
}

double stored_log_prob(const uint16_t* row, int64_t i) {
    float scale, min_log_prob;
    std::memcpy(&scale, row, 4);
    std::memcpy(&min_log_prob, row + 2, 4);
    return double(scale) * double(row[4 + i]) + double(min_log_prob);
}

LogProbWriter::LogProbWriter(const std::string& path, int64_t n_ctx, int64_t n_vocab, int64_t n_chunk,
                             const int32_t* tokens)
    : out_(path), n_vocab_(n_vocab), rows_expected_(n_chunk * (n_ctx - 1 - n_ctx / 2)),
      row_(size_t(log_prob_row_len(n_vocab))) {
    if (n_ctx > INT32_MAX || n_vocab > INT32_MAX || n_chunk > INT32_MAX)
        throw std::runtime_error(path + ": sizes do not fit the log-prob file's int32 header");
    out_.write(kMagic, 8);
    const int32_t head[3] = {int32_t(n_ctx), int32_t(n_vocab), int32_t(n_chunk)};
    out_.write(head, sizeof head);
    out_.write(tokens, size_t(n_chunk * n_ctx) * 4);
}

void LogProbWriter::add_row(const float* logits) {
    if (rows_ >= rows_expected_) throw std::runtime_error(out_.path() + ": more log-prob rows than the header announces");
    compress_log_probs(logits, n_vocab_, row_.data());
    out_.write(row_.data(), row_.size() * 2);
    ++rows_;
}

void LogProbWriter::commit() {
    if (rows_ != rows_expected_)
        throw std::runtime_error(out_.path() + ": " + std::to_string(rows_) + " log-prob rows written, " +
                                 std::to_string(rows_expected_) + " expected");
    out_.commit();
}

LogProbFile::LogProbFile(const std::string& path) : file_(std::make_unique<MappedFile>(path)) {
    const uint8_t* p = file_->data();
    const uint64_t size = file_->size();
    if (size < kHeaderBytes || std::memcmp(p, kMagic, 8) != 0)
        throw std::runtime_error(path + ": not a log-probability file (expected \"_logits_\" at offset 0, as written by "
                                 "minigpt perplexity --save-logits or llama-perplexity --kl-divergence-base)");
    int32_t head[3];
    std::memcpy(head, p + 8, sizeof head);
    n_ctx_ = head[0];
    n_vocab_ = head[1];
    n_chunk_ = head[2];
    if (n_ctx_ < 2 || n_vocab_ < 1 || n_chunk_ < 1)
        throw std::runtime_error(path + ": bad header at offset 8: n_ctx " + std::to_string(n_ctx_) + ", n_vocab " +
                                 std::to_string(n_vocab_) + ", n_chunk " + std::to_string(n_chunk_));
    // Three int32 header fields: the products below can overflow 64 bits, and a wrapped
    // total could match the file size. Each part is checked against the size instead.
    const uint64_t token_bytes = uint64_t(n_chunk_) * uint64_t(n_ctx_) * 4;  // < 2^64
    const uint64_t row_bytes = uint64_t(log_prob_row_len(n_vocab_)) * 2;
    uint64_t rows_bytes = 0, expected = 0;
    const bool overflow = __builtin_mul_overflow(uint64_t(n_chunk_) * uint64_t(rows_per_chunk()), row_bytes, &rows_bytes) ||
                          __builtin_add_overflow(uint64_t(kHeaderBytes) + token_bytes, rows_bytes, &expected);
    if (overflow || size != expected)
        throw std::runtime_error(path + ": " + std::to_string(size) + " bytes, expected " +
                                 (overflow ? std::string("more than 2^64") : std::to_string(expected)) +
                                 " for n_ctx " + std::to_string(n_ctx_) + ", n_vocab " + std::to_string(n_vocab_) +
                                 ", " + std::to_string(n_chunk_) + " chunks (truncated or not a log-prob file)");
    tokens_.resize(size_t(n_chunk_ * n_ctx_));
    std::memcpy(tokens_.data(), p + kHeaderBytes, token_bytes);
    for (size_t i = 0; i < tokens_.size(); ++i)
        if (tokens_[i] < 0 || tokens_[i] >= n_vocab_)
            throw std::runtime_error(path + ": token " + std::to_string(tokens_[i]) + " at offset " +
                                     std::to_string(kHeaderBytes + 4 * i) + " is outside the vocabulary");
    rows_ = p + kHeaderBytes + token_bytes;
}

const uint16_t* LogProbFile::row(int64_t chunk, int64_t k) const {
    return reinterpret_cast<const uint16_t*>(rows_) + (chunk * rows_per_chunk() + k) * log_prob_row_len(n_vocab_);
}

void KLStats::add(const float* logits, int64_t n_vocab, const uint16_t* base_row, int32_t target) {
    int64_t imax = 0;
    for (int64_t i = 1; i < n_vocab; ++i)
        if (logits[i] > logits[imax]) imax = i;
    double sum_exp = 0.0;
    for (int64_t i = 0; i < n_vocab; ++i) sum_exp += std::exp(double(logits[i]) - double(logits[imax]));
    const double log_norm = double(logits[imax]) + std::log(sum_exp);  // log q_i = logits_i - log_norm

    const double nll = log_norm - double(logits[target]);
    const double nll_base = -stored_log_prob(base_row, target);
    sum_nll_ += nll;
    sum_nll2_ += nll * nll;
    sum_nll_base_ += nll_base;
    sum_nll_base2_ += nll_base * nll_base;
    sum_nll_nll_base_ += nll * nll_base;

    // KL(base || model) over the tokens the file stores (log p_base > -16, as llama.cpp).
    double kld = 0.0, lp_base_max = 0.0;
    int64_t imax_base = -1;
    for (int64_t i = 0; i < n_vocab; ++i) {
        const double lp_base = stored_log_prob(base_row, i);
        if (i == 0 || lp_base > lp_base_max) {
            lp_base_max = lp_base;
            imax_base = i;
        }
        if (lp_base > -16.0) kld += std::exp(lp_base) * (lp_base - (double(logits[i]) - log_norm));
    }
    sum_kld_ += kld;
    sum_kld2_ += kld * kld;
    if (imax == imax_base) ++same_top_;
    const double p_diff = std::exp(-nll) - std::exp(-nll_base);
    sum_p_diff_ += p_diff;
    sum_p_diff2_ += p_diff * p_diff;
    sum_p_diff4_ += p_diff * p_diff * p_diff * p_diff;
    kld_values_.push_back(kld);
    p_diff_values_.push_back(p_diff);
    ++count_;
}

KLReport KLStats::report() const {
    KLReport r;
    r.count = count_;
    if (count_ == 0) return r;
    const MeanErr log_ppl = mean_and_uncertainty(sum_nll_, sum_nll2_, count_);
    const MeanErr log_ppl_base = mean_and_uncertainty(sum_nll_base_, sum_nll_base2_, count_);
    r.ppl = {std::exp(log_ppl.mean), std::exp(log_ppl.mean) * log_ppl.err};
    r.ppl_base = {std::exp(log_ppl_base.mean), std::exp(log_ppl_base.mean) * log_ppl_base.err};
    const double cov = covariance(sum_nll_, sum_nll_base_, sum_nll_nll_base_, count_);
    const double denom = log_ppl.err * log_ppl_base.err;
    r.log_ppl_correlation = denom > 0 ? cov / denom : 0.0;
    const double ratio_var = log_ppl.err * log_ppl.err + log_ppl_base.err * log_ppl_base.err - 2.0 * cov;
    r.log_ppl_ratio = {log_ppl.mean - log_ppl_base.mean, std::sqrt(std::max(0.0, ratio_var))};
    r.ppl_ratio = {std::exp(r.log_ppl_ratio.mean), std::exp(r.log_ppl_ratio.mean) * r.log_ppl_ratio.err};
    const double ppl_cov = r.ppl.mean * r.ppl_base.mean * cov;
    r.ppl_diff = {r.ppl.mean - r.ppl_base.mean,
                  std::sqrt(std::max(0.0, r.ppl.err * r.ppl.err + r.ppl_base.err * r.ppl_base.err - 2.0 * ppl_cov))};
    r.kld = mean_and_uncertainty(sum_kld_, sum_kld2_, count_);
    r.p_diff = mean_and_uncertainty(sum_p_diff_, sum_p_diff2_, count_);
    const MeanErr mse = mean_and_uncertainty(sum_p_diff2_, sum_p_diff4_, count_);
    r.rms_p_diff.mean = std::sqrt(mse.mean);
    r.rms_p_diff.err = r.rms_p_diff.mean > 0 ? 0.5 / r.rms_p_diff.mean * mse.err : 0.0;
    const double top = double(same_top_) / double(count_);
    r.same_top = {top, count_ > 1 ? std::sqrt(top * (1 - top) / double(count_ - 1)) : 0.0};

    std::vector<double> k = kld_values_, d = p_diff_values_;
    std::sort(k.begin(), k.end());
    std::sort(d.begin(), d.end());
    r.kld_max = k.back();
    r.kld_99_9 = percentile(k, 0.999);
    r.kld_99 = percentile(k, 0.99);
    r.kld_95 = percentile(k, 0.95);
    r.kld_90 = percentile(k, 0.90);
    r.kld_median = median(k);
    r.kld_10 = percentile(k, 0.10);
    r.kld_5 = percentile(k, 0.05);
    r.kld_1 = percentile(k, 0.01);
    r.kld_0_1 = percentile(k, 0.001);
    r.kld_min = k.front();
    r.p_diff_max = d.back();
    r.p_diff_median = median(d);
    r.p_diff_min = d.front();
    return r;
}

std::string format_kl_report(const KLReport& r) {
    std::string s;
    char line[160];
    auto add = [&](const char* fmt, auto... v) {
        std::snprintf(line, sizeof line, fmt, v...);
        s += line;
    };
    add("====== Perplexity statistics ======\n");
    add("Mean PPL(Q)                   : %10.6f ± %10.6f\n", r.ppl.mean, r.ppl.err);
    add("Mean PPL(base)                : %10.6f ± %10.6f\n", r.ppl_base.mean, r.ppl_base.err);
    add("Cor(ln(PPL(Q)), ln(PPL(base))): %6.2f%%\n", 100.0 * r.log_ppl_correlation);
    add("Mean ln(PPL(Q)/PPL(base))     : %10.6f ± %10.6f\n", r.log_ppl_ratio.mean, r.log_ppl_ratio.err);
    add("Mean PPL(Q)/PPL(base)         : %10.6f ± %10.6f\n", r.ppl_ratio.mean, r.ppl_ratio.err);
    add("Mean PPL(Q)-PPL(base)         : %10.6f ± %10.6f\n\n", r.ppl_diff.mean, r.ppl_diff.err);
    add("====== KL divergence statistics ======\n");
    add("Mean    KLD: %10.6f ± %10.6f\n", r.kld.mean, r.kld.err);
    add("Maximum KLD: %10.6f\n", r.kld_max);
    add("99.9%%   KLD: %10.6f\n", r.kld_99_9);
    add("99.0%%   KLD: %10.6f\n", r.kld_99);
    add("95.0%%   KLD: %10.6f\n", r.kld_95);
    add("90.0%%   KLD: %10.6f\n", r.kld_90);
    add("Median  KLD: %10.6f\n", r.kld_median);
    add("10.0%%   KLD: %10.6f\n", r.kld_10);
    add(" 5.0%%   KLD: %10.6f\n", r.kld_5);
    add(" 1.0%%   KLD: %10.6f\n", r.kld_1);
    add(" 0.1%%   KLD: %10.6f\n", r.kld_0_1);
    add("Minimum KLD: %10.6f\n\n", r.kld_min);
    add("====== Token probability statistics ======\n");
    add("Mean    Δp: %6.3f ± %5.3f %%\n", 100.0 * r.p_diff.mean, 100.0 * r.p_diff.err);
    add("Maximum Δp: %6.3f%%\n", 100.0 * r.p_diff_max);
    add("Median  Δp: %6.3f%%\n", 100.0 * r.p_diff_median);
    add("Minimum Δp: %6.3f%%\n", 100.0 * r.p_diff_min);
    add("RMS Δp    : %6.3f ± %5.3f %%\n", 100.0 * r.rms_p_diff.mean, 100.0 * r.rms_p_diff.err);
    add("Same top p: %6.3f ± %5.3f %%\n", 100.0 * r.same_top.mean, 100.0 * r.same_top.err);
    return s;
}

}  // namespace minigpt
