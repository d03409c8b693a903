// StreamDecoder: hands out text as soon as it is complete UTF-8.
#include "tokenizer/tokenizer.h"

#include "tokenizer/unicode_categories.h"

namespace minigpt {

namespace {

const char kReplacement[] = "\xEF\xBF\xBD";  // U+FFFD

// Length of the UTF-8 sequence a lead byte announces (0: not a lead byte).
size_t sequence_length(unsigned char b) {
    if (b < 0x80) return 1;
    if (b >= 0xC2 && b <= 0xDF) return 2;
    if (b >= 0xE0 && b <= 0xEF) return 3;
    if (b >= 0xF0 && b <= 0xF4) return 4;
    return 0;
}

// True when s (shorter than the sequence its first byte announces) could still
// become a valid sequence: it is a prefix of some valid encoding.
bool is_incomplete_prefix(const unsigned char* s, size_t n) {
    const size_t want = sequence_length(s[0]);
    if (want <= n || want == 0) return false;
    for (size_t i = 1; i < n; ++i) {
        if ((s[i] & 0xC0) != 0x80) return false;
    }
    if (n >= 2) {  // the second byte range rules out overlongs, surrogates and > U+10FFFF
        const unsigned char b0 = s[0], b1 = s[1];
        if ((b0 == 0xE0 && b1 < 0xA0) || (b0 == 0xED && b1 > 0x9F) || (b0 == 0xF0 && b1 < 0x90) ||
            (b0 == 0xF4 && b1 > 0x8F))
            return false;
    }
    return true;
}

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
        } else if (hold_tail && is_incomplete_prefix(p + i, n - i)) {
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
