#include "util/huge_pages.h"

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <cstdlib>

#include <malloc.h>
#include <new>
#include <sys/mman.h>
#include <unistd.h>

namespace minigpt {

namespace {
constexpr uintptr_t kHugePage = uintptr_t(kHugePageBytes);

size_t whole_huge_pages(size_t bytes) { return (bytes + kHugePage - 1) & ~size_t(kHugePage - 1); }
}  // namespace

void use_huge_pages_for_heap() {
#if defined(__GLIBC__) && defined(MADV_HUGEPAGE)
    // Blocks below 8 MiB come from the heap (a fixed threshold: glibc's own grows to
    // 32 MiB as mapped blocks are freed); larger ones keep a mapping of their own,
    // given back when freed (UninitVector's large buffers map their own). The heap
    // grows 16 MiB at a time (address space only: pages arrive when touched) and
    // gives back free memory at its top beyond 64 MiB: a long-lived process (bench)
    // keeps its peak resident memory near what it uses.
    mallopt(M_MMAP_THRESHOLD, 8 << 20);
    mallopt(M_TOP_PAD, 16 << 20);
    mallopt(M_TRIM_THRESHOLD, 64 << 20);
    // Grow the heap to ~64 MiB of address space now (blocks below the threshold,
    // and malloc touches only their edges) and advise all of it: brk() puts later
    // growth in a new mapping without the advice (mappings with different advice do
    // not merge).
    void* blocks[6];
    for (void*& b : blocks) b = std::malloc(7 << 20);
    for (void* b : blocks) *static_cast<volatile char*>(b) = 0;  // used: the calls stay
    for (void* b : blocks) std::free(b);
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

void* reserve_huge_aligned(size_t bytes) {
    // A huge page more than needed, then the ends around the aligned part go back.
    const uintptr_t page = uintptr_t(::sysconf(_SC_PAGESIZE));
    const size_t size = (bytes + page - 1) & ~size_t(page - 1);
    void* reserved = ::mmap(nullptr, size + kHugePage, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (reserved == MAP_FAILED) return nullptr;
    const uintptr_t base = reinterpret_cast<uintptr_t>(reserved);
    const uintptr_t aligned = (base + kHugePage - 1) & ~(kHugePage - 1);
    const uintptr_t end = aligned + size, reserved_end = base + size + kHugePage;
    if (aligned > base) ::munmap(reserved, aligned - base);
    if (reserved_end > end) ::munmap(reinterpret_cast<void*>(end), reserved_end - end);
    return reinterpret_cast<void*>(aligned);
}

void* allocate_huge_buffer(size_t bytes) {
    if (kHugeBuffersFromMalloc) {
        void* p = std::malloc(bytes);
        if (!p) throw std::bad_alloc();
        return p;
    }
    const size_t size = whole_huge_pages(bytes);
    void* at = reserve_huge_aligned(size);
    if (!at) throw std::bad_alloc();
    void* p = ::mmap(at, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    if (p == MAP_FAILED) {
        ::munmap(at, size);
        throw std::bad_alloc();
    }
#if defined(MADV_HUGEPAGE)
    ::madvise(p, size, MADV_HUGEPAGE);  // a hint: 4 KiB pages where refused
#endif
    return p;
}

void free_huge_buffer(void* p, size_t bytes) {
    if (kHugeBuffersFromMalloc) {
        std::free(p);
        return;
    }
    if (p) ::munmap(p, whole_huge_pages(bytes));
}

}  // namespace minigpt
