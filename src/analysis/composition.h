// How heads compose: Q-, K- and V-composition scores between heads of different
// layers (Elhage et al. 2021; TransformerLens HookedTransformer.all_composition_scores)
// and each head's OV copying score (Olsson et al. 2022), from the weights alone.
//
// Row-vector convention, per head: W_Q, W_K, W_V (d x d_head), W_O (d_head x d),
//   OV = W_V W_O (d x d),  QK = W_Q W_K^T (d x d),
//   Q-composition(h1 -> h2) = |OV_1 QK_2|_F   / (|OV_1|_F |QK_2|_F)
//   K-composition(h1 -> h2) = |OV_1 QK_2^T|_F / (|OV_1|_F |QK_2|_F)
//   V-composition(h1 -> h2) = |OV_1 OV_2|_F   / (|OV_1|_F |OV_2|_F)
// for h1 in an earlier layer than h2 (0 otherwise, and 0 when a denominator is 0).
//   copy(h) = sum(lambda) / sum(|lambda|) over the eigenvalues of W_E[S] OV W_U[:, S]
// for a set S of token ids (the whole vocabulary by default).
//
// Weights are processed as TransformerLens's from_pretrained does by default:
// fold_ln (each layer's ln_1 weight multiplied into its W_Q, W_K, W_V; ln_final's
// into W_U) with the reading weights centred (mean over d_model subtracted from each
// column of W_Q, W_K, W_V, W_U), center_writing_weights (each row of W_O and W_E
// centred over d_model) and center_unembed (W_U's mean over the vocabulary
// subtracted). `center = false` keeps the folding and skips every centring.
// Grouped key/value heads are repeated to their query heads, as TransformerLens does.
//
// Computed on low-rank factors: with thin QR factors (W = Q R, R d_head x d_head),
// |OV_1 QK_2|_F = |R_{V1} W_{O1} W_{Q2} R_{K2}^T|_F, so every pair costs one
// (d_head x d) by (d x d_head) product, all of them one GEMM per source layer; the
// copying score takes the eigenvalues of W_O (W_U[:,S] W_E[S]) W_V (d_head x d_head),
// which are the nonzero eigenvalues of the |S| x |S| matrix.
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

#include "runtime/model.h"

namespace minigpt {

struct CircuitOptions {
    bool center = true;       // TransformerLens's centring (see above); folding is always done
    int64_t copy_tokens = 0;  // |S|: 0 = the whole vocabulary, else copy_token_sample(n_vocab, copy_tokens)
};

struct CircuitScores {
    int64_t n_layer = 0, n_head = 0;
    // (n_layer*n_head)^2 row-major: [source head][destination head], heads indexed
    // layer * n_head + head; 0 unless the source's layer is before the destination's.
    std::vector<double> q, k, v;
    std::vector<double> copy;              // n_layer*n_head OV copying scores
    std::vector<double> ov_norm, qk_norm;  // |OV|_F and |QK|_F of each head (0: the head writes / reads nothing)
    int64_t copy_token_count = 0;          // |S|
};

// N token ids spread evenly over [0, n_vocab): floor(i * n_vocab / N), i = 0..N-1
// (every id when N is 0 or at least n_vocab). Deterministic, independent of the tokenizer.
std::vector<int32_t> copy_token_sample(int64_t n_vocab, int64_t n);

// BLAS threads are whatever the caller set (blas::set_threads).
// progress(done, total) after each source layer.
CircuitScores composition_scores(const Model& model, const CircuitOptions& opt,
                                 const std::function<void(int64_t, int64_t)>& progress = nullptr);

}  // namespace minigpt
