// Random-weight GPT-2 GGUF files of any shape, for tests and benchmarks (the
// bench builds a GPT-2-124M-shaped one itself, so nothing is downloaded).
#pragma once
#include <cstdint>
#include <string>

#include "format/dtype.h"

namespace minigpt {

struct ModelShape {
    int64_t n_vocab = 96, n_ctx = 64, n_embd = 32, n_ff = 128, n_layer = 2, n_head = 4;
    int64_t n_head_kv = 0;  // key/value heads; 0 = n_head (no gpt2.attention.head_count_kv written)
    static ModelShape gpt2_124m() { return ModelShape{50257, 1024, 768, 3072, 12, 12}; }
};

// Writes a GPT-2 with random weights: matrices in `wtype` (f32, f16, q8_0),
// norms, biases and position embeddings f32, plus output.weight (a separate
// random LM head) when with_output.
void write_random_gpt2(const std::string& path, const ModelShape& shape, DType wtype, uint64_t seed,
                       bool with_output = true);

}  // namespace minigpt
