// The three Unicode classes GPT-2's pre-tokenizer pattern distinguishes
// (UTF-8 decoding is util/utf8.h's decode_utf8). Data: tokenizer/unicode_tables.cpp, generated
// by scripts/gen_unicode_tables.py from Unicode 16.0.0 (the version of the Rust
// regex tables inside npm tiktoken 1.0.22).
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace minigpt {

enum class CharClass : uint8_t {
    Other = 0,   // neither \p{L}, \p{N} nor \s
    Letter = 1,  // \p{L}: General_Category Lu Ll Lt Lm Lo
    Number = 2,  // \p{N}: General_Category Nd Nl No
    Space = 3,   // \s in the Rust regex crate: the White_Space property
};

struct CharClassRange {
    uint32_t first, last;  // inclusive
    CharClass cls;
};

// Sorted, non-overlapping; code points not covered are Other.
extern const CharClassRange kCharClassRanges[];
extern const size_t kCharClassRangeCount;
extern const char kUnicodeTablesVersion[];

// Two-stage lookup table built once from kCharClassRanges: O(1) per code point.
class CharClassTable {
public:
    static const CharClassTable& instance();
    CharClass operator()(uint32_t cp) const {
        if (cp < 0x80) return CharClass(ascii_[cp]);
        if (cp > 0x10FFFF) return CharClass::Other;
        return CharClass(blocks_[size_t(stage1_[cp >> kShift]) << kShift | (cp & kMask)]);
    }
private:
    CharClassTable();
    static constexpr uint32_t kShift = 7, kMask = (1u << kShift) - 1;
    uint8_t ascii_[128];
    uint16_t stage1_[(0x10FFFF >> kShift) + 1];
    std::vector<uint8_t> blocks_;  // distinct 128-entry blocks, a few tens of KB
};

// Reference lookup by binary search over kCharClassRanges (tests compare the table to it).
CharClass char_class_by_search(uint32_t cp);

}  // namespace minigpt
