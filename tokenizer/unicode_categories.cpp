// Builds the two-stage code point -> CharClass table from the generated ranges.
#include "tokenizer/unicode_categories.h"

#include <algorithm>
#include <map>
#include <vector>

namespace minigpt {

CharClass char_class_by_search(uint32_t cp) {
    const CharClassRange* end = kCharClassRanges + kCharClassRangeCount;
    const CharClassRange* it = std::upper_bound(
        kCharClassRanges, end, cp, [](uint32_t c, const CharClassRange& r) { return c < r.first; });
    if (it == kCharClassRanges) return CharClass::Other;
    --it;
    return cp <= it->last ? it->cls : CharClass::Other;
}

CharClassTable::CharClassTable() {
    // Expand every code point once, then share identical 128-entry blocks:
    // most of the code space is a handful of repeated blocks (all Other, all Letter).
    std::vector<uint8_t> flat(0x110000, uint8_t(CharClass::Other));
    for (size_t i = 0; i < kCharClassRangeCount; ++i)
        std::fill(flat.begin() + kCharClassRanges[i].first, flat.begin() + kCharClassRanges[i].last + 1,
                  uint8_t(kCharClassRanges[i].cls));
    std::copy(flat.begin(), flat.begin() + 128, ascii_);

    const size_t block = size_t(1) << kShift;
    std::map<std::vector<uint8_t>, uint16_t> seen;
    for (size_t b = 0; b * block < flat.size(); ++b) {
        std::vector<uint8_t> content(flat.begin() + b * block, flat.begin() + (b + 1) * block);
        auto found = seen.find(content);
        if (found == seen.end()) {
            found = seen.emplace(content, uint16_t(blocks_.size() / block)).first;
            blocks_.insert(blocks_.end(), content.begin(), content.end());
        }
        stage1_[b] = found->second;
    }
}

const CharClassTable& CharClassTable::instance() {
    static const CharClassTable table;
    return table;
}

}  // namespace minigpt
