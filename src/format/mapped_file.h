// Read-only memory map of a whole file; the single owner of the mapping.
// Weights are views into it, so it must outlive every model built on it.
#pragma once
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace minigpt {

class MappedFile {
public:
    explicit MappedFile(const std::string& path);  // throws with the path and errno text
    // A view of bytes the caller owns and keeps alive (the fuzz targets parse
    // buffers this way); `name` stands for the path in messages. Never unmapped.
    MappedFile(const std::string& name, const uint8_t* data, uint64_t size)
        : path_(name), data_(data), size_(size), owned_(false) {}
    ~MappedFile();
    MappedFile(const MappedFile&) = delete;
    MappedFile& operator=(const MappedFile&) = delete;

    // Starts bringing the byte ranges (offset, length), in this order, into this
    // process's page tables in a background thread and returns at once: 2 MiB at a
    // time, madvise(MADV_POPULATE_READ) (Linux 5.14) then one read per 4 KiB page.
    // For a file in the page cache nothing is read from disk or copied; the first
    // pass over the weights then finds them mapped instead of faulting page by page
    // (on a VM with shadow page tables the read per page is what makes the first
    // touch cheap, the populate alone is not). Once per mapping; the destructor
    // stops the thread after its current 2 MiB.
    void populate_in_background(std::vector<std::pair<uint64_t, uint64_t>> ranges) const;
    // Stops that thread after its current 2 MiB (it returns at once, without waiting).
    void stop_populating() const { stop_populate_.store(true, std::memory_order_relaxed); }

    // The share of the bytes this process has mapped of the file that the kernel maps
    // in 2 MiB pages (/proc/self/smaps: FilePmdMapped / Rss; 0 when nothing is mapped
    // yet or the file is not ours). It depends on how the page cache holds the file
    // (see map_huge_page_aligned in the .cpp): a first pass over a model in 2 MiB
    // pages costs milliseconds, in 4 KiB ones a quarter of a second for 654 MB.
    double mapped_in_huge_pages() const;

    const uint8_t* data() const { return data_; }
    uint64_t size() const { return size_; }
    const std::string& path() const { return path_; }

private:
    std::string path_;
    const uint8_t* data_ = nullptr;
    uint64_t size_ = 0;
    bool owned_ = true;
    mutable std::thread populate_;  // populate_in_background's, stopped and joined by the destructor
    mutable std::atomic<bool> stop_populate_{false};
};

}  // namespace minigpt
