#include "format/mapped_file.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <stdexcept>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace minigpt {

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
    void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    ::close(fd);  // the mapping keeps the file alive
    if (p == MAP_FAILED) throw std::runtime_error(path + ": mmap failed: " + std::strerror(e));
    data_ = static_cast<const uint8_t*>(p);
}

MappedFile::~MappedFile() {
    if (populate_.joinable()) populate_.join();
    if (data_ && owned_) ::munmap(const_cast<uint8_t*>(data_), size_);
}

void MappedFile::populate_in_background(std::vector<std::pair<uint64_t, uint64_t>> ranges) const {
    if (populate_.joinable() || !owned_) return;
    const uint8_t* base = data_;
    const uint64_t size = size_;
    populate_ = std::thread([base, size, ranges = std::move(ranges)] {
#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#endif
        const uintptr_t page = uintptr_t(::sysconf(_SC_PAGESIZE)), chunk = uintptr_t(2) << 20;
        unsigned sum = 0;
        for (const auto& [offset, length] : ranges) {
            if (offset >= size) continue;
            const uintptr_t end = reinterpret_cast<uintptr_t>(base) + std::min(size, offset + length);
            for (uintptr_t p = (reinterpret_cast<uintptr_t>(base) + offset) & ~(page - 1); p < end; p += chunk) {
                const uintptr_t e = std::min(end, p + chunk);
                ::madvise(reinterpret_cast<void*>(p), e - p, MADV_POPULATE_READ);  // a hint: failure is harmless
                for (uintptr_t q = p; q < e; q += page) sum += *reinterpret_cast<const volatile uint8_t*>(q);
            }
        }
        (void)sum;
    });
}

}  // namespace minigpt
