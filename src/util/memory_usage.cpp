#include "util/memory_usage.h"

#include <cstdio>
#include <cstring>

namespace minigpt {

namespace {
uint64_t status_kib(const char* field) {
    FILE* f = std::fopen("/proc/self/status", "r");
    if (!f) return 0;
    char line[256];
    uint64_t kib = 0;
    const size_t n = std::strlen(field);
    while (std::fgets(line, sizeof line, f))
        if (std::strncmp(line, field, n) == 0 && line[n] == ':') {
            std::sscanf(line + n + 1, "%lu", &kib);
            break;
        }
    std::fclose(f);
    return kib * 1024;
}
}  // namespace

uint64_t resident_bytes() { return status_kib("VmRSS"); }
uint64_t peak_resident_bytes() { return status_kib("VmHWM"); }

}  // namespace minigpt
