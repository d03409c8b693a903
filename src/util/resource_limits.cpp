#include "util/resource_limits.h"

#include <cstdio>
#include <stdexcept>
#include <unistd.h>

namespace minigpt {

uint64_t checked_product(std::initializer_list<uint64_t> factors, const std::string& what) {
    uint64_t p = 1;
    bool overflow = false;
    for (uint64_t f : factors) overflow = __builtin_mul_overflow(p, f, &p) || overflow;
    if (overflow) {
        std::string s;
        for (uint64_t f : factors) s += (s.empty() ? "" : " x ") + std::to_string(f);
        throw std::runtime_error(what + ": " + s + " overflows 64 bits");
    }
    return p;
}

uint64_t physical_memory_bytes() {
    const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    return pages > 0 && page > 0 ? uint64_t(pages) * uint64_t(page) : 0;
}

std::string format_bytes(uint64_t bytes) {
    char buf[64];
    if (bytes >= (uint64_t(1) << 40)) std::snprintf(buf, sizeof buf, "%.1f TiB", double(bytes) / double(uint64_t(1) << 40));
    else if (bytes >= (uint64_t(1) << 30)) std::snprintf(buf, sizeof buf, "%.1f GiB", double(bytes) / double(1 << 30));
    else if (bytes >= (uint64_t(1) << 20)) std::snprintf(buf, sizeof buf, "%.1f MiB", double(bytes) / double(1 << 20));
    else std::snprintf(buf, sizeof buf, "%llu bytes", (unsigned long long)bytes);
    return buf;
}

void check_allocation(uint64_t bytes, const std::string& what, const std::string& hint) {
    const uint64_t mem = physical_memory_bytes();
    if (mem > 0 && bytes > mem)
        throw std::runtime_error(what + " needs " + format_bytes(bytes) + ", more than this machine's " +
                                 format_bytes(mem) + " of memory; " + hint);
}

}  // namespace minigpt
