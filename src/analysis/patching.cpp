#include "analysis/patching.h"

#include <algorithm>
#include <stdexcept>
#include <string>

#include "eval/perplexity.h"
#include "runtime/transformer.h"
#include "util/resource_limits.h"

namespace minigpt {

double PatchMetric::operator()(const float* logits, int64_t n_vocab) const {
    if (wrong >= 0) return double(logits[answer]) - double(logits[wrong]);
    return -token_nll(logits, n_vocab, answer);  // log_softmax in double, max subtracted
}

ZRecorder::ZRecorder(const Config& cfg, int64_t n_pos) : d_(cfg.n_embd), hd_(cfg.head_dim()), n_pos_(n_pos) {
    check_allocation(uint64_t(cfg.n_layer) * uint64_t(n_pos) * uint64_t(d_) * 4,
                     "the clean run's head outputs (" + std::to_string(n_pos) + " positions)", "give fewer tokens");
    z_.assign(size_t(cfg.n_layer * n_pos * d_), 0.f);
}

void ZRecorder::on(const HookView& v) {
    for (int64_t i = 0; i < v.rows; ++i) {
        const int64_t p = v.pos0 + i;
        if (p >= n_pos_) throw std::runtime_error("ZRecorder: position " + std::to_string(p) + " beyond the recorded length");
        std::copy(v.row(i), v.row(i) + d_, z_.begin() + (v.layer * n_pos_ + p) * d_);
    }
}

ZPatch::ZPatch(const Config& cfg, const ZRecorder& source)
    : hd_(cfg.head_dim()), n_head_(cfg.n_head), src_(source), by_layer_(size_t(cfg.n_layer)) {}

void ZPatch::set(const std::vector<HeadRef>& heads, int64_t pos) {
    for (auto& l : by_layer_) l.clear();
    for (const HeadRef& h : heads) {
        if (h.layer < 0 || size_t(h.layer) >= by_layer_.size() || h.head < 0 || h.head >= n_head_)
            throw std::runtime_error("patching: head " + head_arg(h) + " does not exist");
        by_layer_[size_t(h.layer)].push_back(h.head);
    }
    if (pos >= src_.n_pos()) throw std::runtime_error("patching: position " + std::to_string(pos) + " was not recorded");
    pos_ = pos;
}

void ZPatch::on(const HookView& v) {
    for (int h : by_layer_[size_t(v.layer)])
        for (int64_t i = 0; i < v.rows; ++i) {
            const int64_t p = v.pos0 + i;
            if (pos_ >= 0 && p != pos_) continue;
            const float* src = src_.z(v.layer, p, h);
            std::copy(src, src + hd_, v.row(i) + h * hd_);
        }
}

namespace {

void check_inputs(const Model& model, const std::vector<int32_t>& clean, const std::vector<int32_t>& corrupt,
                  const PatchMetric& metric) {
    const Config& c = model.config();
    if (clean.empty()) throw std::runtime_error("patching: the clean sequence has no tokens");
    if (clean.size() != corrupt.size())
        throw std::runtime_error("patching: the clean and corrupted sequences differ in length (" +
                                 std::to_string(clean.size()) + " and " + std::to_string(corrupt.size()) + " tokens)");
    if (int64_t(clean.size()) > c.n_ctx)
        throw std::runtime_error("patching: " + std::to_string(clean.size()) + " tokens exceed the model's context of " +
                                 std::to_string(c.n_ctx));
    auto check = [&](int32_t id) {
        if (id < 0 || id >= c.n_vocab)
            throw std::runtime_error("patching: token id " + std::to_string(id) + " is outside the vocabulary (0.." +
                                     std::to_string(c.n_vocab - 1) + ")");
    };
    check(metric.answer);
    if (metric.wrong != -1) check(metric.wrong);
}

TransformerOptions options_for(int64_t n, int n_threads) {
    TransformerOptions o;
    o.n_ctx = n;
    o.n_batch = n;  // one batch, so every run's arithmetic is laid out alike
    o.n_threads = n_threads;
    return o;
}

}  // namespace

PatchingReport run_patching(const Model& model, const std::vector<int32_t>& clean, const std::vector<int32_t>& corrupt,
                            const PatchMetric& metric, const PatchingOptions& opt,
                            const std::function<void(int64_t, int64_t)>& progress) {
    check_inputs(model, clean, corrupt, metric);
    const Config& c = model.config();
    const int64_t T = int64_t(clean.size()), K = c.n_layer * c.n_head, V = c.n_vocab;
    std::vector<int64_t> todo;  // head indices layer * n_head + head
    for (int64_t k = 0; k < K && opt.heads.empty(); ++k) todo.push_back(k);
    for (const HeadRef& h : opt.heads) {
        if (h.layer < 0 || h.layer >= c.n_layer || h.head < 0 || h.head >= c.n_head)
            throw std::runtime_error("patching: head " + head_arg(h) + " does not exist");
        todo.push_back(h.layer * c.n_head + h.head);
    }
    PatchingReport r;
    r.n_layer = c.n_layer;
    r.n_head = c.n_head;
    r.n_pos = T;
    const int64_t n = int64_t(todo.size()), total = 2 + n + (opt.per_position ? n * T : 0);
    int64_t done = 0;
    auto tick = [&] {
        if (progress) progress(++done, total);
    };

    Transformer tf(model, options_for(T, opt.n_threads));
    ZRecorder rec(c, T);
    tf.set_hooks(&rec);
    r.clean = metric(tf.forward(clean.data(), T), V);
    tick();
    tf.set_hooks(nullptr);
    tf.reset();
    r.corrupted = metric(tf.forward(corrupt.data(), T), V);
    tick();
    if (r.clean == r.corrupted)
        throw std::runtime_error("patching: the clean and corrupted runs give the same metric (" + std::to_string(r.clean) +
                                 "), so restored = 0/0: choose prompts whose answers differ");

    ZPatch patch(c, rec);
    tf.set_hooks(&patch);
    const double nan = std::numeric_limits<double>::quiet_NaN();
    r.patched.assign(size_t(K), nan);
    for (int64_t k : todo) {
        patch.set({HeadRef{int(k / c.n_head), int(k % c.n_head)}});
        tf.reset();
        r.patched[size_t(k)] = metric(tf.forward(corrupt.data(), T), V);
        tick();
    }
    if (opt.per_position) {
        // A patch at position p changes nothing before p, so the corrupted
        // run's cache is kept up to p and only positions p..T-1 are rerun.
        r.patched_pos.assign(size_t(T * K), nan);
        tf.set_hooks(nullptr);
        tf.reset();
        tf.forward(corrupt.data(), T);
        tf.set_hooks(&patch);
        for (int64_t p = 0; p < T; ++p)
            for (int64_t k : todo) {
                patch.set({HeadRef{int(k / c.n_head), int(k % c.n_head)}}, p);
                tf.truncate(p);
                r.patched_pos[size_t(p * K + k)] = metric(tf.forward(corrupt.data() + p, T - p), V);
                tick();
            }
    }
    tf.set_hooks(nullptr);
    return r;
}

double patched_metric(const Model& model, const std::vector<int32_t>& clean, const std::vector<int32_t>& corrupt,
                      const PatchMetric& metric, const std::vector<HeadRef>& heads, int64_t pos, int n_threads) {
    check_inputs(model, clean, corrupt, metric);
    const Config& c = model.config();
    const int64_t T = int64_t(clean.size());
    Transformer tf(model, options_for(T, n_threads));
    ZRecorder rec(c, T);
    tf.set_hooks(&rec);
    tf.forward(clean.data(), T);
    ZPatch patch(c, rec);
    patch.set(heads, pos);
    tf.set_hooks(&patch);
    tf.reset();
    return metric(tf.forward(corrupt.data(), T), c.n_vocab);
}

}  // namespace minigpt
