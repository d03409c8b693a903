// StreamDecoder: hands out text as soon as it is complete UTF-8.
#include "tokenizer/tokenizer.h"

#include "util/utf8.h"

namespace minigpt {

namespace {

const char kReplacement[] = "\xEF\xBF\xBD";  // U+FFFD

// Appends s[0..n) with every invalid byte replaced by U+FFFD. If `hold_tail`,
// a valid but unfinished sequence at the very end is not consumed; returns the
// number of bytes consumed.
size_t append_valid(const std::string& s, bool hold_tail, std::string* out) {
    const auto* p = reinterpret_cast<const unsigned char*>(s.data());
    const size_t n = s.size();
    size_t i = 0;
    while (i < n) {
        uint32_t cp;
        const size_t len = decode_utf8(p + i, n - i, &cp);
        if (cp != kInvalidByte) {
            out->append(s, i, len);
        } else if (hold_tail && utf8_incomplete_prefix(p + i, n - i)) {
            break;
        } else {
            out->append(kReplacement);
        }
        i += len;
    }
    return i;
}

}  // namespace

std::string StreamDecoder::push(int32_t id) {
    // The first token that stands for any bytes is rendered as a text's first
    // one (SentencePiece drops its dummy-prefix space, even when that leaves
    // nothing); BOS and other control pieces before it stand for no bytes.
    std::string bytes = tok_.token_bytes(id);
    if (first_ && !bytes.empty()) {
        first_ = false;
        bytes = tok_.first_token_bytes(id);
    }
    pending_ += bytes;
    std::string out;
    const size_t used = append_valid(pending_, /*hold_tail=*/true, &out);
    pending_.erase(0, used);
    return out;
}

std::string StreamDecoder::flush() {
    std::string out;
    append_valid(pending_, /*hold_tail=*/false, &out);
    pending_.clear();
    return out;
}

}  // namespace minigpt
