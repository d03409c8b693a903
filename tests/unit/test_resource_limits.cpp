// Sizes from files and options are checked before allocating: a clear error
// instead of std::bad_alloc, an overflowed size or the OOM killer.
#include <doctest/doctest.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "analysis/attention_export.h"
#include "eval/kl_divergence.h"
#include "runtime/kv_cache.h"
#include "util/resource_limits.h"
#include "tiny_model.h"

using namespace minigpt;

namespace {
void write_bytes(const std::string& path, const std::vector<uint8_t>& b) {
    FILE* f = std::fopen(path.c_str(), "wb");
    REQUIRE(f);
    std::fwrite(b.data(), 1, b.size(), f);
    std::fclose(f);
}
template <typename T>
void put(std::vector<uint8_t>& b, T v) {
    const size_t at = b.size();
    b.resize(at + sizeof v);
    std::memcpy(b.data() + at, &v, sizeof v);
}
}  // namespace

TEST_CASE("checked_product refuses overflow and names what it computed") {
    CHECK(checked_product({3, 4, 5}, "x") == 60);
    CHECK_THROWS_WITH_AS(checked_product({uint64_t(1) << 40, uint64_t(1) << 30}, "KV cache size"),
                         doctest::Contains("KV cache size: 1099511627776 x 1073741824 overflows 64 bits"),
                         std::runtime_error);
    CHECK(format_bytes(3u << 30) == "3.0 GiB");
}

TEST_CASE("KV cache: absurd context x layers x width is refused before allocating") {
    CHECK_THROWS_WITH_AS(KVCache(1024, 64, int64_t(1) << 20, 1 << 14),
                         doctest::Contains("more than this machine's"), std::runtime_error);
    CHECK_THROWS_WITH_AS(KVCache(1024, 64, int64_t(1) << 20, 1 << 14),
                         doctest::Contains("lower the context with -c/--ctx-size"), std::runtime_error);
    CHECK_THROWS_WITH_AS(KVCache(int64_t(1) << 20, int64_t(1) << 20, int64_t(1) << 20, int64_t(1) << 20),
                         doctest::Contains("overflows 64 bits"), std::runtime_error);
    KVCache small(2, 2, 8, 4);
    CHECK(small.bytes() == 2 * 2 * 2 * kKVChunk * 4 * 4);  // keys and values of whole chunks of positions
}

TEST_CASE("attention file: a block whose row count wraps around is refused") {
    // Block 1 claims 2^64 - 1 rows starting at position 1: pos0 + rows wraps to 0,
    // which once passed the range check and then pushed 2^64 index entries.
    test::TempPath tmp("wrap.attn");
    std::vector<uint8_t> b(kAttentionMagic, kAttentionMagic + 8);
    put<uint32_t>(b, kAttentionVersion);
    put<uint32_t>(b, 0);  // f32
    put<uint32_t>(b, 1);  // n_layer
    put<uint32_t>(b, 1);  // n_head
    put<uint64_t>(b, 2);  // n_tokens
    put<uint64_t>(b, 2);  // n_blocks
    put<uint64_t>(b, 0);  // ids offset
    b.resize(kAttentionHeaderBytes, 0);
    put<uint64_t>(b, 0);
    put<uint64_t>(b, 1);
    put<float>(b, 1.f);
    put<uint64_t>(b, 1);
    put<uint64_t>(b, ~uint64_t(0));
    put<int32_t>(b, 0);
    put<int32_t>(b, 0);
    write_bytes(tmp.path, b);
    CHECK_THROWS_WITH_AS(AttentionFile::read(tmp.path), doctest::Contains("block 1 covers positions 1+18446744073709551615"),
                         std::runtime_error);
}

TEST_CASE("log-prob file: header sizes whose product overflows are refused") {
    test::TempPath tmp("huge.kld");
    std::vector<uint8_t> b{'_', 'l', 'o', 'g', 'i', 't', 's', '_'};
    put<int32_t>(b, INT32_MAX);  // n_ctx
    put<int32_t>(b, INT32_MAX);  // n_vocab
    put<int32_t>(b, INT32_MAX);  // n_chunk
    b.resize(64, 0);
    write_bytes(tmp.path, b);
    CHECK_THROWS_WITH_AS(LogProbFile(tmp.path), doctest::Contains("expected more than 2^64"), std::runtime_error);
}
