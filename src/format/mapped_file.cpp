#include "format/mapped_file.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <stdexcept>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/huge_pages.h"

namespace minigpt {

namespace {

// Maps the file read-only at an address that is a multiple of 2 MiB, with
// MADV_HUGEPAGE. Where the page cache holds the file in 2 MiB folios (read cold
// through such a mapping, which the advice asks for, or written in aligned 2 MiB
// pieces, as OutputFile writes), the kernel then maps each 2 MiB with one entry
// instead of 512: on this project's VM (shadow page tables) the first pass over a
// 654 MB model's weights took ~20-35 ms instead of ~230 ms. The address is the
// condition: a folio maps whole only where the mapping and the file agree modulo 2 MiB.
void* map_huge_page_aligned(int fd, uint64_t size) {
    void* at = reserve_huge_aligned(size);
    if (!at) return ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
    void* p = ::mmap(at, size, PROT_READ, MAP_PRIVATE | MAP_FIXED, fd, 0);
    if (p == MAP_FAILED) {
        const int e = errno;
        ::munmap(at, size);
        errno = e;
        return p;
    }
#ifdef MADV_HUGEPAGE
    ::madvise(p, size, MADV_HUGEPAGE);  // a hint: where the kernel refuses, 4 KiB pages as before
#endif
    return p;
}

}  // namespace

MappedFile::MappedFile(const std::string& path) : path_(path) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw std::runtime_error(path + ": cannot open: " + std::strerror(errno));
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
        int e = errno;
        ::close(fd);
        throw std::runtime_error(path + ": cannot stat: " + std::strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        ::close(fd);
        throw std::runtime_error(path + ": not a regular file");
    }
    size_ = uint64_t(st.st_size);
    if (size_ == 0) {
        ::close(fd);
        throw std::runtime_error(path + ": file is empty (expected a GGUF model)");
    }
    void* p = map_huge_page_aligned(fd, size_);
    int e = errno;
    ::close(fd);  // the mapping keeps the file alive
    if (p == MAP_FAILED) throw std::runtime_error(path + ": mmap failed: " + std::strerror(e));
    data_ = static_cast<const uint8_t*>(p);
}

MappedFile::~MappedFile() {
    // A command that is done before the weights are all mapped (one token from a
    // short prompt) does not wait for the rest: the thread stops after its chunk.
    stop_populating();
    if (populate_.joinable()) populate_.join();
    if (data_ && owned_) ::munmap(const_cast<uint8_t*>(data_), size_);
}

double MappedFile::mapped_in_huge_pages() const {
    if (!owned_ || !data_) return 0.0;
    FILE* smaps = std::fopen("/proc/self/smaps", "re");
    if (!smaps) return 0.0;
    // The mapping's block: a header line "begin-end perms ..." and then "Key: N kB" lines.
    const auto begin = reinterpret_cast<uintptr_t>(data_);
    char line[512];
    bool ours = false;
    unsigned long rss_kb = 0, pmd_kb = 0;
    while (std::fgets(line, sizeof line, smaps)) {
        unsigned long b = 0, e = 0, kb = 0;
        if (std::sscanf(line, "%lx-%lx ", &b, &e) == 2) {  // no "Key:" line reads as two hex numbers
            ours = b == begin;
        } else if (ours && std::sscanf(line, "Rss: %lu kB", &kb) == 1) {
            rss_kb = kb;
        } else if (ours && std::sscanf(line, "FilePmdMapped: %lu kB", &kb) == 1) {
            pmd_kb = kb;
        }
    }
    std::fclose(smaps);
    return rss_kb ? double(pmd_kb) / double(rss_kb) : 0.0;
}

void MappedFile::populate_in_background(std::vector<std::pair<uint64_t, uint64_t>> ranges) const {
    if (populate_.joinable() || !owned_) return;
    populate_ = std::thread([this, ranges = std::move(ranges)] {
        const uint8_t* base = data_;
        const uint64_t size = size_;
#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#endif
        const uintptr_t page = uintptr_t(::sysconf(_SC_PAGESIZE)), chunk = uintptr_t(kHugePageBytes);
        unsigned sum = 0;
        for (const auto& [offset, length] : ranges) {
            if (offset >= size) continue;
            const uintptr_t end = reinterpret_cast<uintptr_t>(base) + std::min(size, offset + length);
            for (uintptr_t p = (reinterpret_cast<uintptr_t>(base) + offset) & ~(page - 1); p < end; p += chunk) {
                if (stop_populate_.load(std::memory_order_relaxed)) return;
                const uintptr_t e = std::min(end, p + chunk);
                ::madvise(reinterpret_cast<void*>(p), e - p, MADV_POPULATE_READ);  // a hint: failure is harmless
                for (uintptr_t q = p; q < e; q += page) sum += *reinterpret_cast<const volatile uint8_t*>(q);
            }
        }
        (void)sum;
    });
}

}  // namespace minigpt
