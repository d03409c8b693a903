// The zip archives torch.save writes, read from bytes in memory: the end-of-central-
// directory record (zip64 too), the central directory, and each stored member's
// local header, every size and offset checked against the file before use. Members
// are found by name; compressed or encrypted members are refused when their data is
// asked for (torch.save never compresses). Errors throw std::runtime_error naming the file.
#pragma once
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

namespace minigpt {

struct ZipEntry {
    uint64_t size = 0, comp_size = 0, local_offset = 0;
    uint16_t method = 0, flags = 0;
};

class ZipArchive {
public:
    // `data` (size bytes) stays alive while the archive is used; `name` is the path in messages.
    ZipArchive(const std::string& name, const uint8_t* data, uint64_t size) : name_(name), data_(data), size_(size) {
        parse();
    }

    const ZipEntry* find(const std::string& member) const {
        auto it = index_.find(member);
        return it == index_.end() ? nullptr : &entries_[it->second];
    }
    const std::vector<std::string>& names() const { return names_; }  // directory order, duplicates too

    // Offset in the file of a stored member's data, its bytes checked to lie in the file.
    uint64_t data_start(const std::string& member, const ZipEntry& e) const;

private:
    void parse();
    // The zip64 extra field (id 1) holds, in this order, the 64-bit values of the
    // fields saturated at 0xFFFFFFFF: size, compressed size, local header offset.
    void read_zip64_extra(const std::string& member, const uint8_t* x, uint64_t len, ZipEntry& e) const;

    std::string name_;
    const uint8_t* data_;
    uint64_t size_;
    std::vector<ZipEntry> entries_;
    std::unordered_map<std::string, size_t> index_;
    std::vector<std::string> names_;
};

}  // namespace minigpt
