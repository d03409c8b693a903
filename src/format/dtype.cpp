#include "format/dtype.h"

#include <stdexcept>

namespace minigpt {

bool dtype_supported(uint32_t t) {
    return t == uint32_t(DType::F32) || t == uint32_t(DType::F16) || t == uint32_t(DType::Q8_0);
}

const char* dtype_name(DType t) {
    switch (t) {
        case DType::F32: return "f32";
        case DType::F16: return "f16";
        case DType::Q8_0: return "q8_0";
        case DType::BF16: return "bf16";
    }
    return "?";
}

std::string ggml_type_name(uint32_t t) {
    // ggml's numbering (ggml.h, enum ggml_type); gaps are removed types.
    static const char* names[] = {"f32", "f16", "q4_0", "q4_1", "type4", "type5", "q5_0", "q5_1",
                                  "q8_0", "q8_1", "q2_k", "q3_k", "q4_k", "q5_k", "q6_k", "q8_k",
                                  "iq2_xxs", "iq2_xs", "iq3_xxs", "iq1_s", "iq4_nl", "iq3_s", "iq2_s",
                                  "iq4_xs", "i8", "i16", "i32", "i64", "f64", "iq1_m", "bf16"};
    if (t < sizeof(names) / sizeof(names[0])) return names[t];
    return "type " + std::to_string(t);
}

int64_t dtype_block_elems(DType t) { return t == DType::Q8_0 ? kQ8_0Block : 1; }

int64_t dtype_block_bytes(DType t) {
    switch (t) {
        case DType::F32: return 4;
        case DType::F16: return 2;
        case DType::BF16: return 2;
        case DType::Q8_0: return sizeof(BlockQ8_0);
    }
    return 0;
}

int64_t dtype_row_bytes(DType t, int64_t n) {
    const int64_t block = dtype_block_elems(t);
    if (n % block != 0)
        throw std::runtime_error(std::string("row of ") + std::to_string(n) + " elements is not a multiple of the " +
                                 dtype_name(t) + " block size " + std::to_string(block));
    return n / block * dtype_block_bytes(t);
}

}  // namespace minigpt
