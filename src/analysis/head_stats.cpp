#include "analysis/head_stats.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <unordered_map>

#include "eval/rng.h"
#include "runtime/transformer.h"

namespace minigpt {

double row_entropy(const float* p, int64_t len) {
    double h = 0;
    for (int64_t j = 0; j < len; ++j)
        if (p[j] > 0) h -= double(p[j]) * std::log(double(p[j]));
    return h;
}

double row_distance(const float* p, int64_t len) {
    const int64_t i = len - 1;
    double d = 0;
    for (int64_t j = 0; j < len; ++j) d += double(p[j]) * double(i - j);
    return d;
}

double js_divergence(const float* p, const float* q, int64_t len) {
    double s = 0;
    for (int64_t j = 0; j < len; ++j) {
        const double a = p[j], b = q[j], m = 0.5 * (a + b);
        if (a > 0) s += 0.5 * a * std::log(a / m);
        if (b > 0) s += 0.5 * b * std::log(b / m);
    }
    return std::max(0.0, s);
}

TokenWindow::TokenWindow(std::vector<int32_t> window_ids) : ids(std::move(window_ids)), prev_same(ids.size(), -1) {
    std::unordered_map<int32_t, int64_t> last;
    for (size_t i = 0; i < ids.size(); ++i) {
        auto it = last.find(ids[i]);
        if (it != last.end()) prev_same[i] = it->second;
        last[ids[i]] = int64_t(i);
    }
}

// ---- accumulator --------------------------------------------------------------

HeadStatsAccumulator::HeadStatsAccumulator(int64_t n_layer, int64_t n_head)
    : n_layer_(n_layer), n_head_(n_head), sums_(size_t(n_layer * n_head)) {}

void HeadStatsAccumulator::add_text(int64_t layer, int64_t head, const float* rows, int64_t ld, int64_t pos0, int64_t n,
                                    const TokenWindow& w) {
    Sums& s = sums_[size_t(layer * n_head_ + head)];
    for (int64_t r = 0; r < n; ++r) {
        const int64_t i = pos0 + r;
        if (i == 0) continue;  // position 0 sees only itself
        const float* p = rows + r * ld;
        s.entropy += row_entropy(p, i + 1);
        s.distance += row_distance(p, i + 1);
        s.sink += p[0];
        s.prev += p[i - 1];
        ++s.rows;
        int64_t j = w.prev_same[size_t(i)];
        if (j >= 0) {
            double dup = 0;
            for (; j >= 0; j = w.prev_same[size_t(j)]) dup += p[j];
            s.dup += dup;
            ++s.dup_rows;
        }
    }
}

void HeadStatsAccumulator::add_induction(int64_t layer, int64_t head, const float* rows, int64_t ld, int64_t pos0,
                                         int64_t n, const TokenWindow& w) {
    Sums& s = sums_[size_t(layer * n_head_ + head)];
    for (int64_t r = 0; r < n; ++r) {
        const int64_t i = pos0 + r;
        int64_t k = w.prev_same[size_t(i)];
        if (k < 0) continue;
        const float* p = rows + r * ld;
        double ind = 0;
        for (; k >= 0; k = w.prev_same[size_t(k)]) ind += p[k + 1];  // the token after each earlier occurrence
        s.ind += ind;
        ++s.ind_rows;
    }
}

HeadScores HeadStatsAccumulator::scores(int64_t layer, int64_t head) const {
    const Sums& s = sums_[size_t(layer * n_head_ + head)];
    auto mean = [](double sum, int64_t n) { return n > 0 ? sum / double(n) : 0.0; };
    HeadScores h;
    h.entropy = mean(s.entropy, s.rows);
    h.distance = mean(s.distance, s.rows);
    h.sink = mean(s.sink, s.rows);
    h.prev_token = mean(s.prev, s.rows);
    h.dup_token = mean(s.dup, s.dup_rows);
    h.induction = mean(s.ind, s.ind_rows);
    return h;
}

// ---- similarity -----------------------------------------------------------------

HeadSimilarity::HeadSimilarity(int64_t n_heads_total)
    : k_(n_heads_total), kept_(size_t(n_heads_total)), sums_(size_t(n_heads_total * n_heads_total), 0.0) {}

void HeadSimilarity::begin_window(std::vector<int64_t> positions) {
    positions_ = std::move(positions);
    stride_ = positions_.empty() ? 0 : positions_.back() + 1;
    for (auto& k : kept_) k.assign(positions_.size() * size_t(stride_), 0.f);
}

void HeadSimilarity::add_rows(int64_t k, const float* rows, int64_t ld, int64_t pos0, int64_t n) {
    auto first = std::lower_bound(positions_.begin(), positions_.end(), pos0);
    for (auto it = first; it != positions_.end() && *it < pos0 + n; ++it) {
        const float* p = rows + (*it - pos0) * ld;
        std::copy(p, p + *it + 1, kept_[size_t(k)].begin() + (it - positions_.begin()) * stride_);
    }
}

void HeadSimilarity::end_window() {
    // JSD(P,Q) = (sum p ln p + sum q ln q) / 2 - sum m ln m, m = (p+q)/2: the
    // per-head sums are computed once per row, leaving one log per pair entry.
    std::vector<double> plogp(static_cast<size_t>(k_));
    for (size_t r = 0; r < positions_.size(); ++r) {
        const int64_t len = positions_[r] + 1;
        for (int64_t a = 0; a < k_; ++a) plogp[size_t(a)] = -row_entropy(kept_[size_t(a)].data() + r * stride_, len);
        for (int64_t a = 0; a < k_; ++a) {
            const float* p = kept_[size_t(a)].data() + r * stride_;
            for (int64_t b = a + 1; b < k_; ++b) {
                const float* q = kept_[size_t(b)].data() + r * stride_;
                double mlogm = 0;
                for (int64_t j = 0; j < len; ++j) {
                    const float m = 0.5f * (p[j] + q[j]);
                    if (m > 0) mlogm += double(m) * std::log(double(m));
                }
                sums_[size_t(a * k_ + b)] += std::max(0.0, 0.5 * (plogp[size_t(a)] + plogp[size_t(b)]) - mlogm);
            }
        }
        ++rows_;
    }
    positions_.clear();
}

std::vector<double> HeadSimilarity::matrix() const {
    std::vector<double> m(size_t(k_ * k_), 0.0);
    if (rows_ == 0) return m;
    for (int64_t a = 0; a < k_; ++a)
        for (int64_t b = a + 1; b < k_; ++b)
            m[size_t(a * k_ + b)] = m[size_t(b * k_ + a)] = sums_[size_t(a * k_ + b)] / double(rows_);
    return m;
}

std::vector<int64_t> sample_positions(int64_t T, int64_t m) {
    std::vector<int64_t> out;
    const int64_t avail = T - 1;  // positions 1..T-1
    if (avail <= 0 || m <= 0) return out;
    const int64_t k = std::min(m, avail);
    for (int64_t i = 0; i < k; ++i) {
        const int64_t pos = 1 + (k == 1 ? avail - 1 : i * (avail - 1) / (k - 1));
        if (out.empty() || out.back() != pos) out.push_back(pos);
    }
    return out;
}

std::vector<std::vector<int32_t>> make_induction_sequences(const std::vector<int32_t>& allowed, int32_t bos, int64_t R,
                                                           int64_t count, uint64_t seed) {
    std::vector<int32_t> pool;
    for (int32_t id : allowed)
        if (id != bos) pool.push_back(id);
    if (R < 1 || int64_t(pool.size()) < R)
        throw std::runtime_error("induction: need " + std::to_string(R) + " distinct tokens, the vocabulary offers " +
                                 std::to_string(pool.size()));
    Rng rng(seed);
    std::vector<std::vector<int32_t>> out;
    for (int64_t s = 0; s < count; ++s) {
        // Partial Fisher-Yates: the first R entries become a uniform sample without replacement.
        for (int64_t i = 0; i < R; ++i) {
            const int64_t j = i + int64_t(rng.next() % uint64_t(int64_t(pool.size()) - i));
            std::swap(pool[size_t(i)], pool[size_t(j)]);
        }
        std::vector<int32_t> seq{bos};
        for (int rep = 0; rep < 2; ++rep) seq.insert(seq.end(), pool.begin(), pool.begin() + R);
        out.push_back(std::move(seq));
    }
    return out;
}

// ---- the run ----------------------------------------------------------------------

namespace {

class StatsHooks : public ForwardHooks {
public:
    StatsHooks(HeadStatsAccumulator& acc, HeadSimilarity* sim, int64_t n_head) : acc_(acc), sim_(sim), n_head_(n_head) {}
    uint32_t wanted() const override { return hook_bit(Hook::Pattern); }
    void on(const HookView& v) override {
        if (v.hook != Hook::Pattern) return;
        if (induction_) {
            acc_.add_induction(v.layer, v.head, v.data, v.ld, v.pos0, v.rows, *window_);
        } else {
            acc_.add_text(v.layer, v.head, v.data, v.ld, v.pos0, v.rows, *window_);
            if (sim_) sim_->add_rows(v.layer * n_head_ + v.head, v.data, v.ld, v.pos0, v.rows);
        }
    }
    void set(const TokenWindow* w, bool induction) {
        window_ = w;
        induction_ = induction;
    }

private:
    HeadStatsAccumulator& acc_;
    HeadSimilarity* sim_;
    int64_t n_head_;
    const TokenWindow* window_ = nullptr;
    bool induction_ = false;
};

}  // namespace

HeadStatsReport run_head_stats(const Model& model, const std::vector<std::vector<int32_t>>& text_windows,
                               const std::vector<std::vector<int32_t>>& induction_sequences,
                               const HeadStatsOptions& opt, const std::function<void(int64_t, int64_t)>& progress) {
    const Config& c = model.config();
    size_t longest = 1;
    for (const auto& w : text_windows) longest = std::max(longest, w.size());
    for (const auto& w : induction_sequences) longest = std::max(longest, w.size());
    TransformerOptions to;
    to.n_ctx = int64_t(longest);
    to.n_threads = opt.n_threads;
    Transformer tf(model, to);
    HeadStatsAccumulator acc(c.n_layer, c.n_head);
    HeadSimilarity sim(c.n_layer * c.n_head);
    StatsHooks hooks(acc, opt.sim_rows > 0 ? &sim : nullptr, c.n_head);
    tf.set_hooks(&hooks);

    const int64_t total = int64_t(text_windows.size() + induction_sequences.size());
    int64_t done = 0;
    auto run = [&](const std::vector<int32_t>& ids, bool induction) {
        const TokenWindow w(ids);
        hooks.set(&w, induction);
        if (!induction && opt.sim_rows > 0) sim.begin_window(sample_positions(int64_t(ids.size()), opt.sim_rows));
        tf.reset();
        tf.forward(ids.data(), int64_t(ids.size()));
        if (!induction && opt.sim_rows > 0) sim.end_window();
        if (progress) progress(++done, total);
    };
    for (const auto& w : text_windows) run(w, false);
    for (const auto& s : induction_sequences) run(s, true);

    HeadStatsReport rep;
    rep.n_layer = c.n_layer;
    rep.n_head = c.n_head;
    for (int64_t l = 0; l < c.n_layer; ++l)
        for (int64_t h = 0; h < c.n_head; ++h) rep.heads.push_back(acc.scores(l, h));
    rep.similarity = sim.matrix();
    rep.text_rows = acc.text_rows();
    rep.dup_rows = acc.dup_rows();
    rep.induction_rows = acc.induction_rows();
    rep.similarity_rows = sim.rows_compared();
    return rep;
}

}  // namespace minigpt
