// Tensor element types, numbered as ggml numbers them so GGUF type ids map 1:1.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace minigpt {

enum class DType : uint32_t {
    F32 = 0,
    F16 = 1,
    Q8_0 = 8,   // blocks of 32 weights: one f16 scale, then 32 int8 values (34 bytes)
    BF16 = 30,
};

constexpr int64_t kQ8_0Block = 32;
struct BlockQ8_0 {
    uint16_t scale;      // f16 bits
    int8_t q[kQ8_0Block];
};
static_assert(sizeof(BlockQ8_0) == 34, "q8_0 block must match ggml's layout");

// True for the types this runtime can compute with.
bool dtype_supported(uint32_t ggml_type);
const char* dtype_name(DType t);
// Name for any ggml type id, including those we do not support (for messages).
std::string ggml_type_name(uint32_t ggml_type);
// Elements per block and bytes per block (1 and sizeof(element) for plain types).
int64_t dtype_block_elems(DType t);
int64_t dtype_block_bytes(DType t);

// Bytes of a row of n elements; throws if n is not a multiple of the block size.
int64_t dtype_row_bytes(DType t, int64_t n);

}  // namespace minigpt
