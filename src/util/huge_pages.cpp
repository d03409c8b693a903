#include "util/huge_pages.h"

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <cstdlib>

#include <malloc.h>
#include <sys/mman.h>

namespace minigpt {

namespace {
constexpr uintptr_t kHugePage = uintptr_t(2) << 20;
}

void use_huge_pages_for_heap() {
#if defined(__GLIBC__) && defined(MADV_HUGEPAGE)
    // Blocks up to 32 MiB (glibc's largest setting) come from the heap instead of
    // a mapping of their own; the heap grows 64 MiB at a time (address space
    // only: pages arrive when touched) and is never trimmed.
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TOP_PAD, 64 << 20);
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
    // Grow the heap to ~95 MiB of address space now (malloc touches only the block's
    // edges) and advise all of it: brk() puts later growth in a new mapping without
    // the advice (mappings with different advice do not merge).
    void* volatile block = std::malloc(31 << 20);  // volatile: the pair is not optimized away
    std::free(block);
    if (FILE* maps = std::fopen("/proc/self/maps", "re")) {
        char line[512];
        while (std::fgets(line, sizeof line, maps))
            if (std::strstr(line, "[heap]")) {
                unsigned long begin = 0, end = 0;
                if (std::sscanf(line, "%lx-%lx", &begin, &end) == 2 && end > begin)
                    madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE);
            }
        std::fclose(maps);
    }
#endif
}

void advise_huge_pages(void* p, size_t bytes) {
#if defined(MADV_HUGEPAGE)
    const auto a = reinterpret_cast<uintptr_t>(p);
    const uintptr_t begin = (a + kHugePage - 1) & ~(kHugePage - 1), end = (a + bytes) & ~(kHugePage - 1);
    if (end > begin) madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE);
#endif
}

}  // namespace minigpt
