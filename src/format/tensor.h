// Non-owning views of the weights inside a mapped GGUF file: a matrix of any
// stored type and an f32 vector. They own nothing; the mapping outlives them.
#pragma once
#include <cstdint>

#include "format/dtype.h"

namespace minigpt {

// A row-major matrix of `rows` rows of `cols` elements (ggml: ne[0] = cols, ne[1] = rows).
// For a linear layer y = W x, rows = outputs and cols = inputs (PyTorch nn.Linear layout).
struct Matrix {
    DType type = DType::F32;
    int64_t rows = 0;
    int64_t cols = 0;
    const void* data = nullptr;
    int64_t row_bytes() const { return dtype_row_bytes(type, cols); }
    const uint8_t* row(int64_t r) const { return static_cast<const uint8_t*>(data) + r * row_bytes(); }
};

// A 1-D f32 vector (norm gains, biases).
struct Vector {
    int64_t n = 0;
    const float* data = nullptr;
};

// out[0..cols) = row r of M converted to f32 (embedding lookup for any weight type).
void matrix_row(float* out, const Matrix& m, int64_t r);

}  // namespace minigpt
