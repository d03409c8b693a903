// A GPT-2 model: its hyperparameters (from GGUF metadata) and its weights
// (non-owning views into the memory-mapped GGUF file, never copied).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "format/dtype.h"
#include "format/tensor.h"
#include "format/gguf.h"
#include "tokenizer/tokenizer.h"

namespace minigpt {

struct Config {
    int64_t n_vocab = 0;
    int64_t n_ctx = 0;      // gpt2.context_length: learned positions available
    int64_t n_embd = 0;     // gpt2.embedding_length
    int64_t n_ff = 0;       // gpt2.feed_forward_length
    int64_t n_layer = 0;    // gpt2.block_count
    int64_t n_head = 0;     // gpt2.attention.head_count (query heads)
    // gpt2.attention.head_count_kv: key/value heads (= n_head when absent). Fewer is
    // grouped-query attention (Ainslie et al. 2023; 1 = multi-query, Shazeer 2019):
    // query head h reads key/value head h / (n_head / n_head_kv).
    int64_t n_head_kv = 0;
    float ln_eps = 1e-5f;   // gpt2.attention.layer_norm_epsilon
    int64_t head_dim() const { return n_embd / n_head; }
    int64_t n_embd_kv() const { return n_head_kv * head_dim(); }      // width of K (and of V)
    int64_t n_qkv() const { return n_embd + 2 * n_embd_kv(); }        // rows of the fused QKV
    int64_t kv_head_of(int64_t h) const { return h / (n_head / n_head_kv); }
};

struct LayerWeights {
    Vector attn_norm_w, attn_norm_b;   // (n_embd)
    Matrix attn_qkv;                   // (n_embd + 2*n_embd_kv, n_embd): rows are q | k | v outputs
    Vector attn_qkv_b;                 // (n_embd + 2*n_embd_kv)
    Matrix attn_out;                   // (n_embd, n_embd)
    Vector attn_out_b;                 // (n_embd)
    Vector ffn_norm_w, ffn_norm_b;     // (n_embd)
    Matrix ffn_up;                     // (n_ff, n_embd)
    Vector ffn_up_b;                   // (n_ff)
    Matrix ffn_down;                   // (n_embd, n_ff)
    Vector ffn_down_b;                 // (n_embd)
};

struct Weights {
    Matrix token_embd;                 // (n_vocab, n_embd)
    Matrix position_embd;              // (n_ctx, n_embd)
    std::vector<LayerWeights> layers;  // n_layer
    Vector output_norm_w, output_norm_b;  // (n_embd)
    Matrix output;                     // (n_vocab, n_embd): the LM head; token_embd when tied
    bool tied_output = true;
};

class Model {
public:
    // Maps the GGUF file and checks every tensor's presence, type and shape
    // against the hyperparameters. Throws with the file name and the problem.
    static std::unique_ptr<Model> load(const std::string& path);
    static std::unique_ptr<Model> load(std::unique_ptr<GGUFFile> file);  // the same on a parsed file

    const Config& config() const { return config_; }
    const Weights& weights() const { return weights_; }
    const GGUFFile& gguf() const { return *gguf_; }
    // The tokenizer description stored in the file (tokenizer.ggml.* keys).
    TokenizerSpec tokenizer_spec() const;
    // Starts bringing the weights into the page tables in a background thread, in
    // the order the forward pass reads them (every block, then the embeddings and
    // the LM head), while the caller builds the tokenizer; see GGUFFile.
    void populate_weights_in_background() const;
    // Stops it (after its current 2 MiB): the caller's threads take over the first pass.
    void stop_populating_weights() const { gguf_->stop_populating(); }
    // Bytes of weight data the forward pass reads for one decoded token.
    uint64_t weight_bytes_per_token() const;

private:
    std::unique_ptr<GGUFFile> gguf_;
    Config config_;
    Weights weights_;
};

}  // namespace minigpt
