#include "analysis/attention_export.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>

#include "format/f16.h"

namespace minigpt {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "the attention format is little-endian");

AttentionDType parse_attention_dtype(const std::string& s) {
    if (s == "f32") return AttentionDType::F32;
    if (s == "f16") return AttentionDType::F16;
    throw std::runtime_error("attention type must be f16 or f32, got \"" + s + "\"");
}

namespace {

int64_t tri(int64_t k) { return k * (k + 1) / 2; }  // values in rows 0..k-1 of a lower triangle

size_t value_bytes(AttentionDType t) { return t == AttentionDType::F32 ? 4 : 2; }

void put_u32(uint8_t* p, uint32_t v) { std::memcpy(p, &v, 4); }
void put_u64(uint8_t* p, uint64_t v) { std::memcpy(p, &v, 8); }

}  // namespace

AttentionWriter::AttentionWriter(const std::string& path, const Config& cfg, AttentionDType dtype)
    : out_(path), n_layer_(cfg.n_layer), n_head_(cfg.n_head), dtype_(dtype) {
    // The header is written now with zero counts and completed by finish().
    uint8_t header[kAttentionHeaderBytes] = {};
    out_.write(header, sizeof header);
    half_.resize(size_t(cfg.n_ctx));
}

void AttentionWriter::on(const HookView& v) {
    if (v.hook != Hook::Pattern) return;
    if (!in_block_) {
        if (v.layer != 0 || v.head != 0 || v.pos0 != next_pos_)
            throw std::runtime_error("attention export: expected layer 0 head 0 at position " +
                                     std::to_string(next_pos_) + ", got layer " + std::to_string(v.layer) + " head " +
                                     std::to_string(v.head) + " at position " + std::to_string(v.pos0) +
                                     " (positions must follow one another from 0: no cache reset or truncation)");
        block_pos0_ = v.pos0;
        block_rows_ = v.rows;
        const uint64_t head[2] = {uint64_t(v.pos0), uint64_t(v.rows)};
        out_.write(head, sizeof head);
        in_block_ = true;
        expect_layer_ = expect_head_ = 0;
    }
    if (v.layer != expect_layer_ || v.head != expect_head_ || v.pos0 != block_pos0_ || v.rows != block_rows_)
        throw std::runtime_error("attention export: patterns out of order (got layer " + std::to_string(v.layer) +
                                 " head " + std::to_string(v.head) + ", expected layer " + std::to_string(expect_layer_) +
                                 " head " + std::to_string(expect_head_) + ")");
    for (int64_t i = 0; i < v.rows; ++i) {
        const int64_t len = v.pos0 + i + 1;  // keys 0..pos0+i
        if (dtype_ == AttentionDType::F32) {
            out_.write(v.row(i), size_t(len) * 4);
        } else {
            if (int64_t(half_.size()) < len) half_.resize(size_t(len));
            for (int64_t j = 0; j < len; ++j) half_[size_t(j)] = f32_to_f16(v.row(i)[j]);
            out_.write(half_.data(), size_t(len) * 2);
        }
    }
    if (++expect_head_ == n_head_) {
        expect_head_ = 0;
        if (++expect_layer_ == n_layer_) {  // the block is complete
            in_block_ = false;
            next_pos_ += block_rows_;
            ++n_blocks_;
        }
    }
}

void AttentionWriter::finish(const std::vector<int32_t>& ids) {
    if (in_block_) throw std::runtime_error(out_.path() + ": attention export finished in the middle of a forward pass");
    if (int64_t(ids.size()) < next_pos_)
        throw std::runtime_error(out_.path() + ": " + std::to_string(ids.size()) + " token ids for " +
                                 std::to_string(next_pos_) + " positions");
    const uint64_t ids_offset = out_.position();
    out_.write(ids.data(), size_t(next_pos_) * sizeof(int32_t));
    uint8_t header[kAttentionHeaderBytes];
    std::memcpy(header, kAttentionMagic, 8);
    put_u32(header + 8, kAttentionVersion);
    put_u32(header + 12, uint32_t(dtype_));
    put_u32(header + 16, uint32_t(n_layer_));
    put_u32(header + 20, uint32_t(n_head_));
    put_u64(header + 24, uint64_t(next_pos_));
    put_u64(header + 32, uint64_t(n_blocks_));
    put_u64(header + 40, uint64_t(ids_offset));
    out_.write_at(0, header, sizeof header);
    out_.commit();
}

// ---- reading ----------------------------------------------------------------

AttentionFile AttentionFile::read(const std::string& path) {
    FILE* f = std::fopen(path.c_str(), "rb");
    if (!f) throw std::runtime_error(path + ": cannot open: " + std::strerror(errno));
    AttentionFile a;
    std::fseek(f, 0, SEEK_END);
    const long size = std::ftell(f);
    std::fseek(f, 0, SEEK_SET);
    a.bytes_.resize(size > 0 ? size_t(size) : 0);
    const bool ok = size >= 0 && std::fread(a.bytes_.data(), 1, a.bytes_.size(), f) == a.bytes_.size();
    std::fclose(f);
    if (!ok) throw std::runtime_error(path + ": read failed");
    const std::vector<uint8_t>& b = a.bytes_;
    auto fail = [&](size_t offset, const std::string& what) {
        return std::runtime_error(path + ": offset " + std::to_string(offset) + ": " + what);
    };
    if (b.size() < size_t(kAttentionHeaderBytes) || std::memcmp(b.data(), kAttentionMagic, 8) != 0)
        throw fail(0, "not a minigpt attention file (magic \"MGPTATTN\" expected)");
    auto u32 = [&](size_t o) { uint32_t v; std::memcpy(&v, b.data() + o, 4); return v; };
    auto u64 = [&](size_t o) { uint64_t v; std::memcpy(&v, b.data() + o, 8); return v; };
    if (u32(8) != kAttentionVersion)
        throw fail(8, "version " + std::to_string(u32(8)) + ", expected " + std::to_string(kAttentionVersion));
    if (u32(12) > 1) throw fail(12, "dtype " + std::to_string(u32(12)) + ", expected 0 (f32) or 1 (f16)");
    a.dtype_ = AttentionDType(u32(12));
    a.n_layer_ = u32(16);
    a.n_head_ = u32(20);
    const uint64_t n_tokens = u64(24), n_blocks = u64(32), ids_offset = u64(40);
    if (a.n_layer_ < 1 || a.n_head_ < 1 || a.n_layer_ > 4096 || a.n_head_ > 4096)
        throw fail(16, "implausible n_layer " + std::to_string(a.n_layer_) + " / n_head " + std::to_string(a.n_head_));
    if (n_tokens > (uint64_t(1) << 24) || n_blocks > n_tokens)
        throw fail(24, "implausible n_tokens " + std::to_string(n_tokens) + " / n_blocks " + std::to_string(n_blocks));
    a.n_tokens_ = int64_t(n_tokens);
    const size_t vb = value_bytes(a.dtype_);
    size_t at = size_t(kAttentionHeaderBytes);
    int64_t pos = 0;
    for (uint64_t k = 0; k < n_blocks; ++k) {
        if (at + 16 > b.size()) throw fail(at, "block " + std::to_string(k) + " header past the end of the file");
        const uint64_t pos0 = u64(at), rows = u64(at + 8);
        if (pos0 != uint64_t(pos) || rows == 0 || rows > n_tokens - pos0)
            throw fail(at, "block " + std::to_string(k) + " covers positions " + std::to_string(pos0) + "+" +
                               std::to_string(rows) + ", expected to start at " + std::to_string(pos) + " within " +
                               std::to_string(n_tokens) + " tokens");
        // Up to 4096 x 4096 x tri(2^24) x 4 bytes: the product can overflow 64 bits.
        uint64_t bytes = 0;
        if (__builtin_mul_overflow(uint64_t(a.n_layer_ * a.n_head_),
                                   uint64_t(tri(int64_t(pos0 + rows)) - tri(int64_t(pos0))) * vb, &bytes) ||
            bytes > b.size() - at - 16)
            throw fail(at, "block " + std::to_string(k) + " data past the end of the file");
        a.blocks_.push_back(Block{int64_t(pos0), int64_t(rows), at + 16});
        for (uint64_t r = 0; r < rows; ++r) a.block_of_pos_.push_back(int64_t(k));
        at += 16 + size_t(bytes);
        pos += int64_t(rows);
    }
    if (pos != a.n_tokens_) throw fail(at, "blocks cover " + std::to_string(pos) + " of " + std::to_string(n_tokens) + " positions");
    if (ids_offset != at || at + n_tokens * 4 != b.size())
        throw fail(40, "token ids at offset " + std::to_string(ids_offset) + " with file size " + std::to_string(b.size()) +
                           ", expected offset " + std::to_string(at) + " and size " + std::to_string(at + n_tokens * 4));
    a.ids_.resize(size_t(n_tokens));
    std::memcpy(a.ids_.data(), b.data() + at, size_t(n_tokens) * 4);
    return a;
}

void AttentionFile::row(int64_t l, int64_t h, int64_t p, float* out) const {
    if (l < 0 || l >= n_layer_ || h < 0 || h >= n_head_ || p < 0 || p >= n_tokens_)
        throw std::runtime_error("attention row out of range");
    const Block& blk = blocks_[size_t(block_of_pos_[size_t(p)])];
    const int64_t per_head = tri(blk.pos0 + blk.n_rows) - tri(blk.pos0);
    const int64_t index = (l * n_head_ + h) * per_head + tri(p) - tri(blk.pos0);
    const uint8_t* src = bytes_.data() + blk.data_offset + size_t(index) * value_bytes(dtype_);
    if (dtype_ == AttentionDType::F32) {
        std::memcpy(out, src, size_t(p + 1) * 4);
    } else {
        for (int64_t j = 0; j <= p; ++j) {
            uint16_t v;
            std::memcpy(&v, src + 2 * j, 2);
            out[j] = f16_to_f32(v);
        }
    }
}

}  // namespace minigpt
