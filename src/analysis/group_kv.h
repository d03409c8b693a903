// Grouped key/value heads from a multi-head GPT-2 (Ainslie et al. 2023, "GQA:
// Training Generalized Multi-Query Transformer Models from Multi-Head
// Checkpoints", section 2.1): the key and value projections (weights and biases)
// of each group of n_head_kv / G consecutive key/value heads are replaced by
// their mean, so G key/value heads remain, each shared by n_head / G query heads.
// G = 1 is multi-query attention (Shazeer 2019); G = n_head_kv gives back the
// same tensors byte for byte.
//
// The result is a GGUF with llama.cpp's layout for grouped heads: the fused
// blk.L.attn_qkv.weight has n_embd + 2 G head_dim rows (q | k | v) and
// gpt2.attention.head_count_kv = G, which llama.cpp's gpt2 loader and graph accept.
// Query rows, the output projection and everything else are copied unchanged.
// The mean is taken in double from the dequantized rows; f16 and q8_0 files get
// the pooled rows rounded back to their type (the only rows that change).
#pragma once
#include <cstdint>
#include <string>

namespace minigpt {

struct GroupKvSummary {
    int64_t n_head = 0, kv_heads_in = 0, kv_heads_out = 0, n_layer = 0;
    uint64_t kv_bytes_per_token_in = 0, kv_bytes_per_token_out = 0;  // f32 KV cache, all layers
};

// Reads `in_path`, writes `out_path` (temporary file + rename) with `kv_heads`
// key/value heads. Throws naming the file when kv_heads does not divide the
// file's key/value head count, or the file is not a GPT-2.
GroupKvSummary group_kv_file(const std::string& in_path, const std::string& out_path, int64_t kv_heads);

}  // namespace minigpt
