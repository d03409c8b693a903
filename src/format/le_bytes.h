// Little-endian reads of a file's raw bytes, and the bounds check that comes before
// them: the one set of them for the formats read by hand (zip, pickle, headers).
#pragma once
#include <cstdint>

namespace minigpt {

inline uint16_t le16(const uint8_t* p) { return uint16_t(p[0] | (p[1] << 8)); }
inline uint32_t le32(const uint8_t* p) {
    return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
}
inline uint64_t le64(const uint8_t* p) { return uint64_t(le32(p)) | uint64_t(le32(p + 4)) << 32; }

// True when [off, off + len) lies inside [0, size), without overflow.
inline bool in_bounds(uint64_t off, uint64_t len, uint64_t size) { return off <= size && len <= size - off; }

}  // namespace minigpt
