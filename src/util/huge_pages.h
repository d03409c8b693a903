// Huge pages for this process's own memory. On the VMs we run on, the first
// touch of a fresh 4 KiB page of anonymous memory costs ~11.6 us (a 64 MiB
// buffer: 188 ms to fault in, 3.4 ms to fill once faulted); the same buffer in
// 2 MiB transparent huge pages faults in 4.2 ms. The kernel's setting here is
// "madvise": a region gets huge pages only when the program asks. So:
//   - use_huge_pages_for_heap() asks for the malloc heap (where every block
//     below 8 MiB then lives). Called first thing in main().
//   - allocate_huge_buffer() maps one large block of its own, in huge pages
//     (UninitVector's buffers of 4 MiB or more).
// Where the kernel has no transparent huge pages both do nothing.
#pragma once
#include <cstddef>
#include <cstdint>

namespace minigpt {

// The x86-64 transparent huge page, also the page cache's largest folio that a
// mapping can map whole (util/output_file.cpp, format/mapped_file.cpp).
constexpr uint64_t kHugePageBytes = uint64_t(2) << 20;

void use_huge_pages_for_heap();

// UninitVector's buffers of kHugeBufferBytes or more: a mapping of their own at a
// 2 MiB-aligned address, advised whole, given back when freed. From malloc they got
// huge pages only where they happened to lie in advised memory (the main heap's first
// 64 MiB, or the 2 MiB-aligned middle of a block): a thread's own malloc arena, or
// the heap beyond those 64 MiB, faulted in 4 KiB at a time. allocate_huge_buffer
// throws std::bad_alloc when the kernel refuses. Under AddressSanitizer both go
// through malloc, which it watches.
constexpr size_t kHugeBufferBytes = size_t(4) << 20;
#if defined(__SANITIZE_ADDRESS__)
constexpr bool kHugeBuffersFromMalloc = true;  // GCC's -fsanitize=address
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool kHugeBuffersFromMalloc = true;  // clang's
#else
constexpr bool kHugeBuffersFromMalloc = false;
#endif
#else
constexpr bool kHugeBuffersFromMalloc = false;
#endif
void* allocate_huge_buffer(size_t bytes);
void free_huge_buffer(void* p, size_t bytes);

// An address range of `bytes` that starts on a 2 MiB boundary, reserved (no access,
// no memory) for the caller to map over with MAP_FIXED, or nullptr. A 2 MiB page or
// page-cache folio maps whole only at such an address. munmap gives it back.
void* reserve_huge_aligned(size_t bytes);

}  // namespace minigpt
