#include "runtime/transformer.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>

#include "kernels/blas.h"
#include "runtime/attention.h"
#include "kernels/kernels.h"
#include "kernels/ops.h"
#include "util/resource_limits.h"

namespace minigpt {

Transformer::Transformer(const Model& model, const TransformerOptions& opt)
    : model_(model),
      cfg_(model.config()),
      n_ctx_(opt.n_ctx > 0 ? opt.n_ctx : model.config().n_ctx),
      n_batch_(std::max<int64_t>(1, std::min(opt.n_batch, opt.n_ctx > 0 ? opt.n_ctx : model.config().n_ctx))),
      pool_(opt.n_threads),
      cache_(model.config().n_layer, model.config().n_head_kv,
             // Positions beyond the learned ones do not exist: checked before allocating.
             (opt.n_ctx > model.config().n_ctx
                  ? throw std::runtime_error("context " + std::to_string(opt.n_ctx) + " exceeds the model's " +
                                             std::to_string(model.config().n_ctx) + " positions")
                  : (opt.n_ctx > 0 ? opt.n_ctx : model.config().n_ctx)),
             model.config().head_dim()) {
    if (opt.n_threads < 1) throw std::runtime_error("thread count must be at least 1");
    kernels();  // chosen here, so that a bad MINIGPT_ISA throws on this thread, not in the pool
    blas::set_threads(opt.n_threads);
    const int64_t d = cfg_.n_embd, B = n_batch_;
    // Activations: (batch, 6 d + n_ff) floats, the scores (max(batch, heads), n_ctx) and
    // the logits; every factor is bounded by the model checks (2^20), so only the total
    // against memory is in question.
    const int64_t score_rows = std::max(B, cfg_.n_head);  // decoding keeps every head's
    check_allocation(4 * (uint64_t(B) * uint64_t(6 * d + cfg_.n_ff) + uint64_t(score_rows) * uint64_t(n_ctx_) +
                          uint64_t(cfg_.n_vocab)),
                     "the activations for a batch of " + std::to_string(B) + " tokens",
                     "lower -b/--batch-size or -c/--ctx-size");
    x_.resize(size_t(B * d));
    h_.resize(size_t(B * d));
    qkv_.resize(size_t(B * cfg_.n_qkv()));
    z_.resize(size_t(B * d));
    proj_.resize(size_t(B * d));
    ff_.resize(size_t(B * cfg_.n_ff));
    scores_.resize(size_t(score_rows * n_ctx_));
    logits_.assign(size_t(cfg_.n_vocab), 0.f);
    scratch_.reserve(std::max(d, cfg_.n_ff));
}

void Transformer::set_hooks(ForwardHooks* hooks) {
    hooks_ = hooks;
    hook_mask_ = hooks ? hooks->wanted() : 0;
}

void Transformer::truncate(int64_t n_pos) {
    if (n_pos < 0 || n_pos > pos_) throw std::runtime_error("truncate: position out of range");
    pos_ = n_pos;
}

void Transformer::emit(Hook h, int layer, int head, float* data, int64_t rows, int64_t cols, int64_t ld) {
    hooks_->on(HookView{h, layer, head, pos_, rows, cols, ld, data});
}

const float* Transformer::forward(const int32_t* tokens, int64_t n, bool all_logits) {
    if (n <= 0) throw std::runtime_error("forward: no tokens");
    if (pos_ + n > n_ctx_)
        throw std::runtime_error("context is full: " + std::to_string(pos_) + " + " + std::to_string(n) +
                                 " tokens exceed the context of " + std::to_string(n_ctx_));
    for (int64_t i = 0; i < n; ++i)
        if (tokens[i] < 0 || tokens[i] >= cfg_.n_vocab)
            throw std::runtime_error("token id " + std::to_string(tokens[i]) + " is outside the vocabulary (0.." +
                                     std::to_string(cfg_.n_vocab - 1) + ")");
    if (all_logits && logits_all_.size() < size_t(n * cfg_.n_vocab)) {
        check_allocation(uint64_t(n) * uint64_t(cfg_.n_vocab) * 4,
                         "the logits of " + std::to_string(n) + " positions x " + std::to_string(cfg_.n_vocab) + " tokens",
                         "give fewer tokens");
        logits_all_.resize(size_t(n * cfg_.n_vocab));
    }
    for (int64_t done = 0; done < n; done += n_batch_) {
        const int64_t nb = std::min(n_batch_, n - done);
        const bool last_batch = done + nb == n;
        float* out = all_logits ? logits_all_.data() + done * cfg_.n_vocab : (last_batch ? logits_.data() : nullptr);
        forward_batch(tokens + done, nb, all_logits, out);
    }
    return all_logits ? logits_all_.data() : logits_.data();
}

void Transformer::forward_batch(const int32_t* tokens, int64_t n, bool all_logits, float* logits) {
    const Weights& w = model_.weights();
    const int64_t d = cfg_.n_embd;

    // x = token embedding + position embedding           (n, d)
    UninitVector<float>& x = x_;
    {
        ProfileScope timer(profile_, Part::Embedding);
        for (int64_t i = 0; i < n; ++i) {
            float* xi = x.data() + i * d;
            matrix_row(xi, w.token_embd, tokens[i]);
            matrix_row(h_.data(), w.position_embd, pos_ + i);
            add(xi, h_.data(), d);
        }
    }

    for (int64_t l = 0; l < cfg_.n_layer; ++l) block(l, n);

    if (logits) {
        // Only the rows whose logits are wanted go through the final LayerNorm and the LM head.
        const int64_t first = all_logits ? 0 : n - 1, rows = n - first;
        float* hf = h_.data();
        {
            ProfileScope timer(profile_, Part::LayerNorm);
            layer_norm_parallel(hf, x.data() + first * d, rows, d, w.output_norm_w.data, w.output_norm_b.data, cfg_.ln_eps, &pool_);
        }
        if (want(Hook::LnFinal)) emit(Hook::LnFinal, -1, -1, hf, rows, d, d);
        {
            ProfileScope timer(profile_, Part::LMHead);
            linear(logits, hf, rows, w.output, nullptr, scratch_, &pool_);  // (rows, vocab) = h · Eᵀ
        }
        if (want(Hook::Logits)) emit(Hook::Logits, -1, -1, logits, rows, cfg_.n_vocab, cfg_.n_vocab);
    }
    pos_ += n;
}

// One pre-LayerNorm block:  x += Attn(LN1(x));  x += MLP(LN2(x))
void Transformer::block(int64_t l, int64_t n) {
    const LayerWeights& lw = model_.weights().layers[size_t(l)];
    const int64_t d = cfg_.n_embd, f = cfg_.n_ff;
    const int L = int(l);
    float* x = x_.data();

    if (want(Hook::ResidPre)) emit(Hook::ResidPre, L, -1, x, n, d, d);

    // --- attention ---
    {
        ProfileScope timer(profile_, Part::LayerNorm);
        layer_norm_parallel(h_.data(), x, n, d, lw.attn_norm_w.data, lw.attn_norm_b.data, cfg_.ln_eps, &pool_);
    }
    {
        ProfileScope timer(profile_, Part::QKV);
        linear(qkv_.data(), h_.data(), n, lw.attn_qkv, &lw.attn_qkv_b, scratch_, &pool_);  // (n, d + 2 d_kv)
    }
    {
        ProfileScope timer(profile_, Part::Attention);
        attention(l, n);  // z: (n, d)
    }
    {
        ProfileScope timer(profile_, Part::OutProj);
        linear(proj_.data(), z_.data(), n, lw.attn_out, &lw.attn_out_b, scratch_, &pool_);  // (n, d)
    }
    if (want(Hook::AttnOut)) emit(Hook::AttnOut, L, -1, proj_.data(), n, d, d);
    add(x, proj_.data(), n * d);
    if (want(Hook::ResidMid)) emit(Hook::ResidMid, L, -1, x, n, d, d);

    // --- MLP ---
    {
        ProfileScope timer(profile_, Part::LayerNorm);
        layer_norm_parallel(h_.data(), x, n, d, lw.ffn_norm_w.data, lw.ffn_norm_b.data, cfg_.ln_eps, &pool_);
    }
    ProfileScope timer(profile_, Part::MLP);
    linear(ff_.data(), h_.data(), n, lw.ffn_up, &lw.ffn_up_b, scratch_, &pool_);  // (n, f)
    if (want(Hook::MlpPre)) emit(Hook::MlpPre, L, -1, ff_.data(), n, f, f);
    gelu_parallel(ff_.data(), n * f, &pool_);  // SIMD kernels (kernels.h), same formula as ops.h
    if (want(Hook::MlpPost)) emit(Hook::MlpPost, L, -1, ff_.data(), n, f, f);
    linear(proj_.data(), ff_.data(), n, lw.ffn_down, &lw.ffn_down_b, scratch_, &pool_);  // (n, d)
    if (want(Hook::MlpOut)) emit(Hook::MlpOut, L, -1, proj_.data(), n, d, d);
    add(x, proj_.data(), n * d);
    if (want(Hook::ResidPost)) emit(Hook::ResidPost, L, -1, x, n, d, d);
}

// Causal multi-head attention of block l for the n new positions.
// In: qkv_ (n, d + 2 d_kv), rows q | k | v. Out: z_ (n, d), head h in columns h*hd..(h+1)*hd.
// With grouped key/value heads (n_head_kv < n_head) query head h reads key/value
// head g = h / (n_head / n_head_kv): the cache holds n_head_kv heads, each written once.
void Transformer::attention(int64_t l, int64_t n) {
    const int64_t d = cfg_.n_embd, hd = cfg_.head_dim(), T = pos_ + n;
    const int64_t d_kv = cfg_.n_embd_kv(), ld = cfg_.n_qkv();
    const int L = int(l);
    float* q = qkv_.data();
    float* k_new = q + d;
    float* v_new = q + d + d_kv;
    if (want(Hook::Q)) emit(Hook::Q, L, -1, q, n, d, ld);
    if (want(Hook::K)) emit(Hook::K, L, -1, k_new, n, d_kv, ld);
    if (want(Hook::V)) emit(Hook::V, L, -1, v_new, n, d_kv, ld);

    // Append the new keys and values of every key/value head to the cache.
    for (int64_t g = 0; g < cfg_.n_head_kv; ++g)
        for (int64_t i = 0; i < n; ++i) {
            std::memcpy(cache_.k_row(l, g, pos_ + i), k_new + i * ld + g * hd, size_t(hd) * sizeof(float));
            std::memcpy(cache_.v_row(l, g, pos_ + i), v_new + i * ld + g * hd, size_t(hd) * sizeof(float));
        }
    // One head: scores, softmax, values, with `s` as its (n, T) score buffer.
    auto head = [&](int64_t h, float* s, ThreadPool* pool) {
        const int64_t g = cfg_.kv_head_of(h);
        const HeadRows kc = cache_.k(l, g), vc = cache_.v(l, g);
        attention_scores(s, q + h * hd, ld, kc, n, pos_, hd, pool);
        if (want(Hook::AttnScores)) emit(Hook::AttnScores, L, int(h), s, n, T, T);
        attention_softmax(s, n, pos_, pool);
        if (want(Hook::Pattern)) emit(Hook::Pattern, L, int(h), s, n, T, T);
        attention_values(z_.data() + h * hd, d, s, vc, n, pos_, hd, pool);
    };
    // Too few rows to split (kMinRowsToSplit), and one thread doing every head left the
    // others waiting (~6 % of a 2-thread q8_0 token): the heads run side by side. A
    // head's numbers come from the same kernels either way. Hooks that watch scores see
    // the heads in order, serially.
    const bool watched = want(Hook::AttnScores) || want(Hook::Pattern);
    if (n == 1 && !watched) {
        // Decoding: each thread a range of heads, read chunk by chunk (attention_decode),
        // the ranges claimed as gemv's are. scores_ holds a row for every head.
        const int64_t H = cfg_.n_head, group = H / cfg_.n_head_kv;
        const int tasks = std::min<int>(pool_.size(), int(H));
        pool_.for_each(tasks, [&](int64_t t, int) {
            const int64_t h0 = H * t / tasks, h1 = H * (t + 1) / tasks;
            attention_decode(z_.data(), q, cache_, l, h0, h1, group, T, hd, scores_.data() + h0 * T);
        });
    } else if (n < kMinRowsToSplit && pool_.size() > 1 && n * pool_.size() * n_ctx_ <= int64_t(scores_.size()) &&
               !watched) {  // a thread's n rows of scores_ each
        pool_.for_each(cfg_.n_head, [&](int64_t h, int thread) { head(h, scores_.data() + thread * n * T, nullptr); });
    } else {
        for (int64_t h = 0; h < cfg_.n_head; ++h) head(h, scores_.data(), &pool_);
    }
    if (want(Hook::Z)) emit(Hook::Z, L, -1, z_.data(), n, d, d);
}

}  // namespace minigpt
