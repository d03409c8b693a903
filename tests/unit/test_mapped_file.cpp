// format/mapped_file.h: the share of a mapping held in 2 MiB pages, read from
// /proc/self/smaps for the mapping's own block.
#include <cstdint>
#include <filesystem>
#include <string>
#include <unistd.h>
#include <vector>

#include <doctest/doctest.h>

#include "format/mapped_file.h"
#include "util/output_file.h"

TEST_CASE("mapped file: the share in 2 MiB pages is 0 before a touch and for a view, a fraction after") {
    const std::string path = (std::filesystem::temp_directory_path() / ("minigpt_mapped_" + std::to_string(::getpid()))).string();
    {
        // 6 MiB written in 2 MiB pieces: the page cache may hold it in 2 MiB folios,
        // which a 2 MiB-aligned mapping maps whole (whether it does depends on the kernel).
        std::vector<uint8_t> bytes(size_t(6) << 20, 7);
        minigpt::OutputFile out(path);
        out.write(bytes.data(), bytes.size());
        out.commit();
    }
    {
        const minigpt::MappedFile f(path);
        CHECK(f.mapped_in_huge_pages() == 0.0);  // nothing mapped yet: Rss 0
        unsigned sum = 0;
        for (uint64_t at = 0; at < f.size(); at += 4096) sum += *reinterpret_cast<const volatile uint8_t*>(f.data() + at);
        CHECK(sum == 7u * unsigned(f.size() / 4096));
        const double huge = f.mapped_in_huge_pages();
        MESSAGE("6 MiB written in 2 MiB pieces, then read: " << huge * 100 << " % mapped in 2 MiB pages");
        CHECK(huge >= 0.0);
        CHECK(huge <= 1.0);
        // A view of bytes the caller owns maps nothing of its own.
        const minigpt::MappedFile view("view", f.data(), f.size());
        CHECK(view.mapped_in_huge_pages() == 0.0);
    }
    std::filesystem::remove(path);
}
