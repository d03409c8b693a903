#include "format/zip_archive.h"

#include <stdexcept>

#include "format/le_bytes.h"

namespace minigpt {

namespace {

[[noreturn]] void fail(const std::string& name, const std::string& what) {
    throw std::runtime_error(name + ": " + what);
}

}  // namespace

uint64_t ZipArchive::data_start(const std::string& member, const ZipEntry& e) const {
    if (e.flags & 1) fail(name_, "zip member " + member + " is encrypted");
    if (e.method != 0)
        fail(name_, "zip member " + member + " is compressed (method " + std::to_string(e.method) +
                        "); only stored members are read natively (torch.save never compresses)");
    if (e.comp_size != e.size)
        fail(name_, "zip member " + member + " is stored but its sizes differ (" + std::to_string(e.comp_size) +
                        " and " + std::to_string(e.size) + ")");
    const uint64_t h = e.local_offset;
    if (!in_bounds(h, 30, size_) || le32(data_ + h) != 0x04034B50)
        fail(name_, "no local zip header for " + member + " at offset " + std::to_string(h));
    const uint64_t start = h + 30 + le16(data_ + h + 26) + le16(data_ + h + 28);
    if (!in_bounds(start, e.size, size_))
        fail(name_, "zip member " + member + " (" + std::to_string(e.size) + " bytes at offset " +
                        std::to_string(start) + ") runs past the end of the file (" + std::to_string(size_) +
                        " bytes)");
    return start;
}

void ZipArchive::parse() {
    const char* not_zip =
        "not a zip archive (the legacy pre-1.6 torch format is not supported; re-save it with torch.save "
        "in a recent torch)";
    if (size_ < 22) fail(name_, not_zip);
    // The end-of-central-directory record: the last one whose comment fits the file.
    uint64_t eocd = UINT64_MAX;
    const uint64_t lowest = size_ - 22 > 65535 ? size_ - 22 - 65535 : 0;
    for (uint64_t pos = size_ - 22 + 1; pos-- > lowest;) {
        if (le32(data_ + pos) == 0x06054B50 && le16(data_ + pos + 20) <= size_ - 22 - pos) {
            eocd = pos;
            break;
        }
    }
    if (eocd == UINT64_MAX) fail(name_, not_zip);
    const uint8_t* r = data_ + eocd;
    uint64_t disk = le16(r + 4), cd_disk = le16(r + 6);
    uint64_t cd_size = le32(r + 12), cd_off = le32(r + 16);
    // ZIP64: a locator just before the record points at the zip64 end record.
    if (eocd >= 20 && le32(data_ + eocd - 20) == 0x07064B50) {
        const uint64_t z = le64(data_ + eocd - 20 + 8);
        if (!in_bounds(z, 56, size_) || le32(data_ + z) != 0x06064B50)
            fail(name_, "corrupt zip: no zip64 end-of-central-directory record at offset " + std::to_string(z));
        disk = le32(data_ + z + 16);
        cd_disk = le32(data_ + z + 20);
        cd_size = le64(data_ + z + 40);
        cd_off = le64(data_ + z + 48);
    }
    if (disk != 0 || cd_disk != 0) fail(name_, "zip archives that span several disks are not supported");
    if (!in_bounds(cd_off, cd_size, size_))
        fail(name_, "corrupt zip: the central directory (" + std::to_string(cd_size) + " bytes at offset " +
                        std::to_string(cd_off) + ") lies outside the file (" + std::to_string(size_) +
                        " bytes)");
    uint64_t p = cd_off;
    const uint64_t end = cd_off + cd_size;
    while (p < end) {
        if (end - p < 46 || le32(data_ + p) != 0x02014B50)
            fail(name_, "corrupt zip: bad central directory entry at offset " + std::to_string(p));
        const uint8_t* c = data_ + p;
        ZipEntry e;
        e.flags = le16(c + 8);
        e.method = le16(c + 10);
        e.comp_size = le32(c + 20);
        e.size = le32(c + 24);
        const uint64_t nlen = le16(c + 28), xlen = le16(c + 30), clen = le16(c + 32);
        e.local_offset = le32(c + 42);
        if (end - p - 46 < nlen + xlen + clen)
            fail(name_, "corrupt zip: central directory entry at offset " + std::to_string(p) +
                            " runs past the directory");
        std::string member(reinterpret_cast<const char*>(c + 46), nlen);
        read_zip64_extra(member, c + 46 + nlen, xlen, e);
        auto it = index_.find(member);
        if (it != index_.end()) {
            entries_[it->second] = e;  // as Python's zipfile: the last of the same name wins
        } else {
            index_.emplace(member, entries_.size());
            entries_.push_back(e);
        }
        names_.push_back(std::move(member));
        p += 46 + nlen + xlen + clen;
    }
}

void ZipArchive::read_zip64_extra(const std::string& member, const uint8_t* x, uint64_t len, ZipEntry& e) const {
    while (len >= 4) {
        const uint16_t id = le16(x), n = le16(x + 2);
        if (n > len - 4) fail(name_, "corrupt zip: bad extra field in the entry of " + member);
        if (id == 1) {
            const uint8_t* q = x + 4;
            uint64_t left = n;
            for (uint64_t* field : {&e.size, &e.comp_size, &e.local_offset}) {
                if (*field != 0xFFFFFFFFu) continue;
                if (left < 8) fail(name_, "corrupt zip: short zip64 extra field in the entry of " + member);
                *field = le64(q);
                q += 8;
                left -= 8;
            }
        }
        x += 4 + n;
        len -= 4 + n;
    }
}

}  // namespace minigpt
