#include "format/tensor.h"

#include <cstring>

#include "format/f16.h"

namespace minigpt {

void matrix_row(float* out, const Matrix& m, int64_t r) {
    const uint8_t* row = m.row(r);
    switch (m.type) {
        case DType::F32: {
            const float* p = reinterpret_cast<const float*>(row);
            for (int64_t i = 0; i < m.cols; ++i) out[i] = p[i];
            break;
        }
        case DType::F16: {
            const uint16_t* p = reinterpret_cast<const uint16_t*>(row);
            for (int64_t i = 0; i < m.cols; ++i) out[i] = f16_to_f32(p[i]);
            break;
        }
        case DType::Q8_0: {
            const BlockQ8_0* blocks = reinterpret_cast<const BlockQ8_0*>(row);
            for (int64_t blk = 0; blk < m.cols / kQ8_0Block; ++blk) {
                const float d = f16_to_f32(blocks[blk].scale);
                for (int64_t j = 0; j < kQ8_0Block; ++j) out[blk * kQ8_0Block + j] = d * float(blocks[blk].q[j]);
            }
            break;
        }
        case DType::BF16: {
            const uint16_t* p = reinterpret_cast<const uint16_t*>(row);
            for (int64_t i = 0; i < m.cols; ++i) out[i] = bf16_to_f32(p[i]);
            break;
        }
    }
}

}  // namespace minigpt
