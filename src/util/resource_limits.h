// Sizes computed from file headers and command-line options are checked before
// anything is allocated: products with overflow checks, totals against the
// machine's memory. A corrupt file or an absurd -c then gives one clear error
// ("the KV cache needs 3.1 TiB, more than this machine's 16.0 GiB of memory;
// lower -c/--ctx-size") instead of std::bad_alloc or the OOM killer.
#pragma once
#include <cstdint>
#include <initializer_list>
#include <string>

namespace minigpt {

// The product of `factors`; throws "WHAT: A × B × ... overflows 64 bits" when it does.
uint64_t checked_product(std::initializer_list<uint64_t> factors, const std::string& what);

// Physical memory of this machine in bytes (sysconf), or 0 when unknown.
uint64_t physical_memory_bytes();

// Throws std::runtime_error when `bytes` exceed the machine's physical memory:
// "WHAT needs N GiB, more than this machine's M GiB of memory; HINT".
void check_allocation(uint64_t bytes, const std::string& what, const std::string& hint);

// "1.5 GiB", "12.0 MiB", "512 bytes".
std::string format_bytes(uint64_t bytes);

}  // namespace minigpt
