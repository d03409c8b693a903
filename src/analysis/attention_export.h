// Attention export: every layer's and head's attention weights (hook_pattern)
// written to a compact binary file while the model runs, and read back.
// The format is documented in docs/attention-format.md; in short:
//
//   header (48 bytes): "MGPTATTN", version 1, dtype (0 f32, 1 f16), n_layer,
//                      n_head, n_tokens, n_blocks, offset of the token ids
//   blocks: one per forward batch (the prompt, then each generated token):
//           u64 pos0, u64 n_rows, then for each layer, each head, rows
//           pos0..pos0+n_rows-1 of the lower triangle (row p: p+1 weights)
//   int32 token ids (n_tokens)
//
// Only the lower triangle is stored (the causal mask makes the rest zero), so
// a (T, T) matrix costs T(T+1)/2 values per head. The writer streams: nothing
// is held in memory beyond one row, and the file appears only on finish()
// (OutputFile), so an interrupted run leaves no half-written file.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "runtime/hooks.h"
#include "runtime/model.h"
#include "util/output_file.h"

namespace minigpt {

enum class AttentionDType : uint32_t { F32 = 0, F16 = 1 };
AttentionDType parse_attention_dtype(const std::string& s);  // "f32" or "f16"

constexpr char kAttentionMagic[8] = {'M', 'G', 'P', 'T', 'A', 'T', 'T', 'N'};
constexpr uint32_t kAttentionVersion = 1;
constexpr int64_t kAttentionHeaderBytes = 48;

class AttentionWriter : public ForwardHooks {
public:
    AttentionWriter(const std::string& path, const Config& cfg, AttentionDType dtype = AttentionDType::F16);

    uint32_t wanted() const override { return hook_bit(Hook::Pattern); }
    void on(const HookView& view) override;

    int64_t n_tokens() const { return next_pos_; }
    // Writes the ids of the positions seen (ids may hold more, e.g. a last
    // sampled token never run through the model: only the first n_tokens()
    // are kept), completes the header and moves the file into place.
    void finish(const std::vector<int32_t>& ids);

private:
    OutputFile out_;
    int64_t n_layer_, n_head_;
    AttentionDType dtype_;
    int64_t next_pos_ = 0;     // first position of the next block
    int64_t n_blocks_ = 0;
    int64_t block_pos0_ = 0, block_rows_ = 0;
    int64_t expect_layer_ = 0, expect_head_ = 0;  // the (layer, head) the current block needs next
    bool in_block_ = false;
    std::vector<uint16_t> half_;  // one row converted to f16
};

// A whole attention file in memory, as stored (f16 stays f16).
class AttentionFile {
public:
    static AttentionFile read(const std::string& path);  // validates every size; throws with path and offset

    int64_t n_layer() const { return n_layer_; }
    int64_t n_head() const { return n_head_; }
    int64_t n_tokens() const { return n_tokens_; }
    AttentionDType dtype() const { return dtype_; }
    const std::vector<int32_t>& ids() const { return ids_; }
    // Row p (query position) of layer l, head h: p+1 weights into out.
    void row(int64_t l, int64_t h, int64_t p, float* out) const;

private:
    struct Block {
        int64_t pos0, n_rows;
        size_t data_offset;  // into bytes_
    };
    int64_t n_layer_ = 0, n_head_ = 0, n_tokens_ = 0;
    AttentionDType dtype_ = AttentionDType::F32;
    std::vector<int32_t> ids_;
    std::vector<Block> blocks_;
    std::vector<int64_t> block_of_pos_;  // position -> index into blocks_
    std::vector<uint8_t> bytes_;
};

}  // namespace minigpt
