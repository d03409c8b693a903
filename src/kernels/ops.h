// Element-wise and row-wise kernels of the GPT-2 forward pass, in the shapes the
// model code works with. Each states the shapes it works on and the formula it
// computes. All f32, row-major.
//
// LayerNorm, GELU and softmax are written once per instruction set in the
// KernelTable (kernels.h): the scalar twins in kernels.cpp are the reference,
// the AVX2 / AVX-512 versions are tested against them (tests/unit/test_kernels.cpp).
// The functions here run the table in use, kernels(), as the forward pass does.
#pragma once
#include <cstdint>

#include "format/tensor.h"

namespace minigpt {

// out[r, :] = (x[r, :] - mean) / sqrt(var + eps) * w + b   for r < rows; x, out: (rows, dim)
// (biased variance, as torch.nn.LayerNorm). out may alias x.
void layer_norm(float* out, const float* x, int64_t rows, int64_t dim, const Vector& w, const Vector& b, float eps);

// x = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))   GPT-2's GELU ("gelu_new"), in place.
void gelu(float* x, int64_t n);

// y[i] += x[i]
void add(float* y, const float* x, int64_t n);

// x[0..n) = softmax(x[0..n)), subtracting the maximum first; returns nothing,
// entries equal to -inf become exactly 0.
void softmax(float* x, int64_t n);

}  // namespace minigpt
