// Read-only memory map of a whole file; the single owner of the mapping.
// Weights are views into it, so it must outlive every model built on it.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

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

    const uint8_t* data() const { return data_; }
    uint64_t size() const { return size_; }
    const std::string& path() const { return path_; }

private:
    std::string path_;
    const uint8_t* data_ = nullptr;
    uint64_t size_ = 0;
    bool owned_ = true;
};

}  // namespace minigpt
