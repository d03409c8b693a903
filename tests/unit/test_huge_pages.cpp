// util/huge_pages.h: UninitVector's large buffers come from mappings of their own at
// 2 MiB-aligned addresses (through malloc under AddressSanitizer, which watches it).
#include <cstdint>
#include <cstring>
#include <numeric>

#include <doctest/doctest.h>

#include "util/huge_pages.h"
#include "util/uninit_vector.h"

namespace {

constexpr bool kFromMalloc = minigpt::kHugeBuffersFromMalloc;

bool huge_aligned(const void* p) { return reinterpret_cast<uintptr_t>(p) % minigpt::kHugePageBytes == 0; }

}  // namespace

TEST_CASE("huge buffers: 2 MiB-aligned, every byte usable, given back") {
    for (size_t bytes : {minigpt::kHugeBufferBytes, minigpt::kHugeBufferBytes + 3, size_t(9) << 20}) {
        auto* p = static_cast<uint8_t*>(minigpt::allocate_huge_buffer(bytes));
        REQUIRE(p != nullptr);
        CAPTURE(bytes);
        CHECK((kFromMalloc || huge_aligned(p)));
        std::memset(p, 0x5a, bytes);  // the first and last bytes included
        CHECK(p[0] == 0x5a);
        CHECK(p[bytes - 1] == 0x5a);
        minigpt::free_huge_buffer(p, bytes);
    }
}

TEST_CASE("huge buffers: an UninitVector keeps its values as it grows across the threshold and back") {
    // 1 MiB (malloc) -> 6 MiB (a mapping of its own) -> 12 MiB (another) -> shrunk and
    // copied into 1 MiB (malloc): the elements survive every move.
    minigpt::UninitVector<uint32_t> v(size_t(1) << 18);
    std::iota(v.begin(), v.end(), 0u);
    for (size_t n : {size_t(6) << 18, size_t(12) << 18}) {
        const size_t old = v.size();
        v.resize(n);
        for (size_t i = old; i < n; ++i) v[i] = uint32_t(i);
        CHECK((kFromMalloc || huge_aligned(v.data())));
    }
    bool kept = true;
    for (size_t i = 0; i < v.size(); ++i) kept &= v[i] == uint32_t(i);
    CHECK(kept);
    v.resize(size_t(1) << 18);
    v.shrink_to_fit();
    kept = true;
    for (size_t i = 0; i < v.size(); ++i) kept &= v[i] == uint32_t(i);
    CHECK(kept);
    CHECK(v.capacity() * sizeof(uint32_t) < minigpt::kHugeBufferBytes);
}
