// transpose_f32 (format/checkpoint_copy.h), which turns Hugging Face's Conv1D weights
// for the converter: against the element-by-element definition, on shapes that take
// each path (8x8 register blocks, ragged edges, and the tiles for output rows a
// multiple of 4 KiB apart).
#include <cstdint>
#include <random>
#include <vector>

#include <doctest/doctest.h>

#include "format/checkpoint_copy.h"

TEST_CASE("transpose_f32: out[c][r] = in[r][c] for every shape's path") {
    const int64_t shapes[][2] = {{1, 1},    {1, 9},    {9, 1},     {8, 8},    {37, 53},  {64, 1024},
                                 {1024, 30}, {1024, 64}, {3072, 768}, {768, 3072}, {2048, 1023}, {33, 2048}};
    std::mt19937 rng(3);
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    for (const auto& shape : shapes) {
        const int64_t rows = shape[0], cols = shape[1];
        std::vector<float> in(size_t(rows * cols)), out(size_t(rows * cols), 0.0f);
        for (float& x : in) x = u(rng);
        minigpt::transpose_f32(in.data(), out.data(), rows, cols);
        int64_t wrong = 0;
        for (int64_t r = 0; r < rows; ++r)
            for (int64_t c = 0; c < cols; ++c) wrong += out[size_t(c * rows + r)] != in[size_t(r * cols + c)];
        INFO(rows << " x " << cols);
        CHECK(wrong == 0);  // a copy: exact
    }
}
