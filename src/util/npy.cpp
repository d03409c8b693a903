#include "util/npy.h"

#include "util/output_file.h"

namespace minigpt {

void write_npy_f32(const std::string& path, const float* data, const std::vector<int64_t>& shape) {
    std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (";
    int64_t count = 1;
    for (int64_t s : shape) {
        dict += std::to_string(s) + ", ";
        count *= s;
    }
    if (shape.size() > 1) dict.resize(dict.size() - 1);  // "(3, 4)" not "(3, 4, )"; "(3,)" stays
    dict += "), }";
    // Header padded with spaces and a newline so data starts on a 64-byte boundary.
    const size_t unpadded = 10 + dict.size() + 1;
    dict.append((64 - unpadded % 64) % 64, ' ');
    dict += '\n';
    OutputFile out(path);
    const uint16_t header_len = uint16_t(dict.size());
    out.write("\x93NUMPY\x01\x00", 8);
    out.write(&header_len, 2);
    out.write(dict);
    out.write(data, size_t(count) * sizeof(float));
    out.commit();
}

}  // namespace minigpt
