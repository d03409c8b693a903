// Resident memory of this process, read from /proc/self/status (Linux).
#pragma once
#include <cstdint>

namespace minigpt {

uint64_t resident_bytes();       // VmRSS: now
uint64_t peak_resident_bytes();  // VmHWM: the high-water mark

}  // namespace minigpt
