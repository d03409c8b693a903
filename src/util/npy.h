// Writes float32 arrays in NumPy's .npy format (version 1.0), all-or-nothing.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace minigpt {

void write_npy_f32(const std::string& path, const float* data, const std::vector<int64_t>& shape);

}  // namespace minigpt
