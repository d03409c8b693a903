#include "analysis/head_gradient.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>

#include "kernels/blas.h"
#include "kernels/kernels.h"
#include "runtime/hooks.h"
#include "util/resource_limits.h"

namespace minigpt {

// Copies, during the runtime's forward pass, what the backward reads: per layer
// the residual stream entering the block and after attention, q|k|v, z and the
// MLP pre-activation; and the residual stream leaving the last block.
class ActivationCapture : public ForwardHooks {
public:
    ActivationCapture(const Config& c, int64_t T)
        : d_(c.n_embd), d_kv_(c.n_embd_kv()), f_(c.n_ff), T_(T), n_layer_(c.n_layer),
          layer_floats_(T * (3 * c.n_embd + c.n_qkv() + c.n_ff)) {
        const uint64_t floats = uint64_t(n_layer_) * uint64_t(layer_floats_) + uint64_t(T * d_);
        check_allocation(4 * floats, "the activations saved for the backward pass of " + std::to_string(T) + " tokens",
                         "lower -c/--ctx-size");
        store_.assign(size_t(floats), 0.f);
    }
    uint32_t wanted() const override {
        return hook_bit(Hook::ResidPre) | hook_bit(Hook::Q) | hook_bit(Hook::K) | hook_bit(Hook::V) |
               hook_bit(Hook::Z) | hook_bit(Hook::ResidMid) | hook_bit(Hook::MlpPre) | hook_bit(Hook::ResidPost);
    }
    void on(const HookView& v) override {
        const int64_t l = v.layer;
        switch (v.hook) {
            case Hook::ResidPre: return copy(v, resid_pre(l), d_, 0);
            case Hook::Q: return copy(v, qkv(l), d_ + 2 * d_kv_, 0);
            case Hook::K: return copy(v, qkv(l), d_ + 2 * d_kv_, d_);
            case Hook::V: return copy(v, qkv(l), d_ + 2 * d_kv_, d_ + d_kv_);
            case Hook::Z: return copy(v, z(l), d_, 0);
            case Hook::ResidMid: return copy(v, resid_mid(l), d_, 0);
            case Hook::MlpPre: return copy(v, mlp_pre(l), f_, 0);
            case Hook::ResidPost:
                if (l == n_layer_ - 1) copy(v, final_resid(), d_, 0);
                return;
            default: return;
        }
    }
    // Row t of each is position t of the window.
    float* resid_pre(int64_t l) { return layer(l); }                      // (T, d)
    float* z(int64_t l) { return layer(l) + T_ * d_; }                     // (T, d)
    float* resid_mid(int64_t l) { return layer(l) + 2 * T_ * d_; }         // (T, d)
    float* qkv(int64_t l) { return layer(l) + 3 * T_ * d_; }               // (T, d + 2 d_kv) q | k | v
    float* mlp_pre(int64_t l) { return qkv(l) + T_ * (d_ + 2 * d_kv_); }  // (T, n_ff)
    float* final_resid() { return store_.data() + n_layer_ * layer_floats_; }  // (T, d)
    uint64_t bytes() const { return 4 * uint64_t(store_.size()); }

private:
    float* layer(int64_t l) { return store_.data() + l * layer_floats_; }
    // The view's rows (positions pos0..) into dst's rows, at column `col` of rows `ld` apart.
    void copy(const HookView& v, float* dst, int64_t ld, int64_t col) {
        for (int64_t i = 0; i < v.rows; ++i)
            std::memcpy(dst + (v.pos0 + i) * ld + col, v.row(i), size_t(v.cols) * sizeof(float));
    }
    int64_t d_, d_kv_, f_, T_, n_layer_, layer_floats_;
    std::vector<float> store_;
};

namespace {

constexpr int64_t kLogitRows = 64;  // rows of logits formed at once: (64, n_vocab) floats

TransformerOptions forward_options(int64_t max_tokens, int n_threads) {
    TransformerOptions o;
    o.n_ctx = max_tokens;
    o.n_threads = n_threads;
    return o;
}

// layernorm_backward over rows split between the pool's threads.
void layernorm_backward_rows(ThreadPool& pool, float* dx, const float* dy, const float* x, int64_t rows, int64_t d,
                             const Vector& w, float eps) {
    pool.parallel_for(rows, 1, [&](int64_t i0, int64_t i1) {
        layernorm_backward(dx + i0 * d, dy + i0 * d, x + i0 * d, i1 - i0, d, w.data, eps);
    });
}

}  // namespace

HeadGradient::HeadGradient(const Model& model, int64_t max_tokens, int n_threads)
    : model_(model),
      cfg_(model.config()),
      max_tokens_(max_tokens),
      tf_(model, forward_options(max_tokens, n_threads)),
      capture_(std::make_unique<ActivationCapture>(model.config(), max_tokens)),
      pool_(n_threads) {
    const int64_t T = max_tokens, d = cfg_.n_embd;
    const uint64_t floats = uint64_t(T) * uint64_t(2 * d + std::max(cfg_.n_ff, cfg_.n_qkv())) +
                            uint64_t(kLogitRows) * uint64_t(d + cfg_.n_vocab) +
                            uint64_t(n_threads) * uint64_t(attention_backward_scratch(T));
    check_allocation(4 * floats, "the backward pass's buffers for " + std::to_string(T) + " tokens", "lower -c/--ctx-size");
    dx_.assign(size_t(T * d), 0.f);
    dh_.assign(size_t(T * d), 0.f);
    dwide_.assign(size_t(T * std::max(cfg_.n_ff, cfg_.n_qkv())), 0.f);
    hf_.assign(size_t(kLogitRows * d), 0.f);
    logits_.assign(size_t(kLogitRows * cfg_.n_vocab), 0.f);
    attn_scratch_.assign(size_t(int64_t(n_threads) * attention_backward_scratch(T)), 0.f);
    linear_scratch_.reserve(std::max(d, cfg_.n_ff));
    tf_.set_hooks(capture_.get());
}

HeadGradient::~HeadGradient() = default;

uint64_t HeadGradient::buffer_bytes() const {
    return capture_->bytes() +
           4 * uint64_t(dx_.size() + dh_.size() + dwide_.size() + hf_.size() + logits_.size() + attn_scratch_.size());
}

WindowGradient HeadGradient::window(const int32_t* tokens, int64_t n, int64_t first_scored, const int32_t* targets) {
    if (n < 1 || n > max_tokens_)
        throw std::runtime_error("head gradient: a window of " + std::to_string(n) + " tokens (1.." +
                                 std::to_string(max_tokens_) + " allowed)");
    if (first_scored < 0 || first_scored >= n)
        throw std::runtime_error("head gradient: first scored row " + std::to_string(first_scored) + " outside the window");
    for (int64_t i = 0; i < n - first_scored; ++i)
        if (targets[i] < 0 || targets[i] >= cfg_.n_vocab)
            throw std::runtime_error("target token " + std::to_string(targets[i]) + " is outside the vocabulary (0.." +
                                     std::to_string(cfg_.n_vocab - 1) + ")");
    tf_.reset();
    tf_.forward(tokens, n);  // the hooks keep the activations

    WindowGradient g;
    g.n_scored = n - first_scored;
    std::fill(dx_.begin(), dx_.begin() + n * cfg_.n_embd, 0.f);
    g.loss = lm_head_backward(n, first_scored, targets);
    g.grad.assign(size_t(cfg_.n_layer * cfg_.n_head), 0.0);
    for (int64_t l = cfg_.n_layer - 1; l >= 0; --l) block_backward(l, n, g.grad.data() + l * cfg_.n_head);
    return g;
}

// logits = LN_f(x) · Eᵀ for the scored rows, a chunk of rows at a time; L = mean NLL;
// dx (rows first_scored..) = LN_f backward of dL/dLN_f(x) = (softmax - onehot) / S · E.
double HeadGradient::lm_head_backward(int64_t n, int64_t first_scored, const int32_t* targets) {
    const Weights& w = model_.weights();
    const int64_t d = cfg_.n_embd, V = cfg_.n_vocab, S = n - first_scored;
    const float scale = float(1.0 / double(S));
    const float* x = capture_->final_resid();
    std::vector<double> nll(static_cast<size_t>(kLogitRows));
    double loss = 0;
    for (int64_t r0 = first_scored; r0 < n; r0 += kLogitRows) {
        const int64_t rows = std::min(kLogitRows, n - r0);
        layer_norm_parallel(hf_.data(), x + r0 * d, rows, d, w.output_norm_w.data, w.output_norm_b.data, cfg_.ln_eps,
                            &pool_);
        linear(logits_.data(), hf_.data(), rows, w.output, nullptr, linear_scratch_, &pool_);  // (rows, V)
        pool_.parallel_for(rows, 1, [&](int64_t i0, int64_t i1) {
            for (int64_t i = i0; i < i1; ++i)
                nll[size_t(i)] = crossentropy_softmax_backward(logits_.data() + i * V, V,
                                                               targets[r0 - first_scored + i], scale);
        });
        for (int64_t i = 0; i < rows; ++i) loss += nll[size_t(i)];  // in row order: the same sum for any thread count
        std::fill(dh_.begin(), dh_.begin() + rows * d, 0.f);
        matmul_backward(dh_.data(), logits_.data(), rows, w.output, mm_scratch_, &pool_);  // dLN_f(x) = dlogits · E
        layernorm_backward_rows(pool_, dx_.data() + r0 * d, dh_.data(), x + r0 * d, rows, d, w.output_norm_w,
                                cfg_.ln_eps);
    }
    return loss / double(S);
}

// In: dx_ = dL/d(residual leaving block l). Out: dx_ = dL/d(residual entering it);
// grad[h] = dL/dξ_h for the block's heads.
void HeadGradient::block_backward(int64_t l, int64_t n, double* grad) {
    const LayerWeights& lw = model_.weights().layers[size_t(l)];
    const int64_t d = cfg_.n_embd, f = cfg_.n_ff, hd = cfg_.head_dim();
    float* dx = dx_.data();
    float* dh = dh_.data();
    float* dwide = dwide_.data();

    // MLP: x_post = x_mid + W_down · gelu(W_up · LN2(x_mid) + b_up) + b_down.
    std::fill(dwide, dwide + n * f, 0.f);
    matmul_backward(dwide, dx, n, lw.ffn_down, mm_scratch_, &pool_);  // (n, f) dL/d gelu output
    const float* pre = capture_->mlp_pre(l);
    pool_.parallel_for(n * f, 1024, [&](int64_t i0, int64_t i1) {
        gelu_backward(dwide + i0, pre + i0, dwide + i0, i1 - i0);  // (n, f) dL/d pre-activation
    });
    std::fill(dh, dh + n * d, 0.f);
    matmul_backward(dh, dwide, n, lw.ffn_up, mm_scratch_, &pool_);  // (n, d) dL/d LN2 output
    layernorm_backward_rows(pool_, dx, dh, capture_->resid_mid(l), n, d, lw.ffn_norm_w, cfg_.ln_eps);  // dx = dL/dx_mid

    // Attention output: x_mid = x_pre + (ξ ⊙ z) · W_Oᵀ + b_O, so dL/dξ_h = Σ dL/dz_h ⊙ z_h at ξ = 1.
    std::fill(dh, dh + n * d, 0.f);
    matmul_backward(dh, dx, n, lw.attn_out, mm_scratch_, &pool_);  // (n, d) dL/dz
    const float* z = capture_->z(l);
    for (int64_t h = 0; h < cfg_.n_head; ++h) {
        double s = 0;
        for (int64_t t = 0; t < n; ++t) {
            const float* zr = z + t * d + h * hd;
            const float* gr = dh + t * d + h * hd;
            for (int64_t i = 0; i < hd; ++i) s += double(gr[i]) * double(zr[i]);
        }
        grad[h] = s;
    }
    if (l == 0) return;  // nothing below the first block has a head

    std::fill(dwide, dwide + n * cfg_.n_qkv(), 0.f);
    attention_backward_heads(l, n);  // dwide (n, d + 2 d_kv) = dL/d q|k|v from dh = dL/dz
    std::fill(dh, dh + n * d, 0.f);
    matmul_backward(dh, dwide, n, lw.attn_qkv, mm_scratch_, &pool_);  // (n, d) dL/d LN1 output
    layernorm_backward_rows(pool_, dx, dh, capture_->resid_pre(l), n, d, lw.attn_norm_w, cfg_.ln_eps);  // dx = dL/dx_pre
}

// One key/value head per task, with the query heads that read it one after
// another (their dk and dv add up in the same columns). Query head h's dq lands
// in columns h·hd of q; kv head g's dk, dv in columns g·hd of k and v.
void HeadGradient::attention_backward_heads(int64_t l, int64_t n) {
    const int64_t d = cfg_.n_embd, d_kv = cfg_.n_embd_kv(), ld = cfg_.n_qkv(), hd = cfg_.head_dim(), T = max_tokens_;
    const int64_t group = cfg_.n_head / cfg_.n_head_kv;
    const float scale = float(1.0 / std::sqrt(double(hd)));  // as runtime/attention.cpp
    const float* qkv = capture_->qkv(l);
    float* dqkv = dwide_.data();
    blas::set_threads(1);
    pool_.for_each(cfg_.n_head_kv, [&](int64_t g, int thread) {
        float* scratch = attn_scratch_.data() + int64_t(thread) * attention_backward_scratch(T);
        for (int64_t h = g * group; h < (g + 1) * group; ++h)
            attention_backward(dqkv + h * hd, dqkv + d + g * hd, dqkv + d + d_kv + g * hd, ld, dh_.data() + h * hd, d,
                               qkv + h * hd, qkv + d + g * hd, qkv + d + d_kv + g * hd, ld, n, hd, scale, scratch);
    });
}

HeadGradientReport run_head_gradient(const Model& model, const std::vector<int32_t>& tokens,
                                     const std::vector<Window>& windows, const PerplexityOptions& opt, int n_threads,
                                     const std::function<void(int64_t, int64_t)>& progress) {
    const Config& c = model.config();
    if (windows.empty()) throw std::runtime_error("head gradient: no window to score");
    if (opt.bos_first && opt.bos_id < 0) throw std::runtime_error("head gradient: BOS is asked for but the model has none");
    int64_t longest = 1;
    for (size_t i = 0; i < windows.size(); ++i) {
        const Window& w = windows[i];
        if (w.begin < 0 || w.end > int64_t(tokens.size()) || w.first_target <= w.begin || w.first_target > w.end ||
            w.n_tokens() < 2)
            throw std::runtime_error("head gradient: window " + std::to_string(i) + " is outside the text");
        longest = std::max(longest, w.n_tokens() - 1);
    }
    HeadGradient hg(model, longest, n_threads);
    HeadGradientReport rep;
    rep.n_layer = c.n_layer;
    rep.n_head = c.n_head;
    rep.buffer_bytes = hg.buffer_bytes();
    const size_t K = size_t(c.n_layer * c.n_head);
    rep.grad.assign(K, 0.0);
    rep.importance.assign(K, 0.0);
    std::vector<int32_t> buf;
    for (const Window& w : windows) {
        buf.assign(tokens.begin() + w.begin, tokens.begin() + w.end);
        if (opt.bos_first) buf[0] = opt.bos_id;
        // As compute_perplexity: the last token is only a target, so n_tokens() - 1 are fed.
        const WindowGradient g = hg.window(buf.data(), w.n_tokens() - 1, w.first_logit(), tokens.data() + w.first_target);
        for (size_t k = 0; k < K; ++k) {
            rep.grad[k] += g.grad[k];
            rep.importance[k] += std::abs(g.grad[k]);
        }
        rep.mean_loss += g.loss;
        rep.tokens_scored += g.n_scored;
        ++rep.windows;
        if (progress) progress(rep.windows, int64_t(windows.size()));
    }
    for (size_t k = 0; k < K; ++k) {
        rep.grad[k] /= double(rep.windows);
        rep.importance[k] /= double(rep.windows);
    }
    rep.mean_loss /= double(rep.windows);
    return rep;
}

namespace {

// Ranks 1..n of v, ties sharing the mean of the ranks they span.
std::vector<double> ranks(const std::vector<double>& v) {
    std::vector<size_t> order(v.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return v[a] < v[b]; });
    std::vector<double> r(v.size());
    for (size_t i = 0; i < order.size();) {
        size_t j = i;
        while (j + 1 < order.size() && v[order[j + 1]] == v[order[i]]) ++j;
        for (size_t k = i; k <= j; ++k) r[order[k]] = 0.5 * double(i + j) + 1.0;
        i = j + 1;
    }
    return r;
}

}  // namespace

double spearman_correlation(const std::vector<double>& a, const std::vector<double>& b) {
    if (a.size() != b.size() || a.size() < 2) throw std::runtime_error("spearman_correlation: need two series of equal length >= 2");
    const std::vector<double> ra = ranks(a), rb = ranks(b);
    const double mean = 0.5 * double(a.size() + 1);
    double sab = 0, saa = 0, sbb = 0;
    for (size_t i = 0; i < a.size(); ++i) {
        sab += (ra[i] - mean) * (rb[i] - mean);
        saa += (ra[i] - mean) * (ra[i] - mean);
        sbb += (rb[i] - mean) * (rb[i] - mean);
    }
    return saa > 0 && sbb > 0 ? sab / std::sqrt(saa * sbb) : std::nan("");
}

}  // namespace minigpt
