// Huge pages for this process's own memory. On the VMs we run on, the first
// touch of a fresh 4 KiB page of anonymous memory costs ~11.6 us (a 64 MiB
// buffer: 188 ms to fault in, 3.4 ms to fill once faulted); the same buffer in
// 2 MiB transparent huge pages faults in 4.2 ms. The kernel's setting here is
// "madvise": a region gets huge pages only when the program asks. So:
//   - use_huge_pages_for_heap() asks for the malloc heap (where every block
//     below 8 MiB then lives). Called first thing in main().
//   - advise_huge_pages() asks for one large block (UninitVector's buffers,
//     which glibc maps apart from the heap from 8 MiB).
// Where the kernel has no transparent huge pages both do nothing.
#pragma once
#include <cstddef>
#include <cstdint>

namespace minigpt {

// The x86-64 transparent huge page, also the page cache's largest folio that a
// mapping can map whole (util/output_file.cpp, format/mapped_file.cpp).
constexpr uint64_t kHugePageBytes = uint64_t(2) << 20;

void use_huge_pages_for_heap();
void advise_huge_pages(void* p, size_t bytes);

}  // namespace minigpt
