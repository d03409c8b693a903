#include "util/utf8.h"

namespace minigpt {

namespace {

// Length of the sequence a lead byte announces (0: not a lead byte).
size_t announced_length(unsigned char b) {
    if (b < 0x80) return 1;
    if (b >= 0xC2 && b <= 0xDF) return 2;
    if (b >= 0xE0 && b <= 0xEF) return 3;
    if (b >= 0xF0 && b <= 0xF4) return 4;
    return 0;
}

}  // namespace

size_t valid_utf8_prefix(std::string_view s) {
    const auto* p = reinterpret_cast<const unsigned char*>(s.data());
    size_t i = 0;
    while (i < s.size()) {
        uint32_t cp;
        const size_t len = decode_utf8(p + i, s.size() - i, &cp);
        if (cp == kInvalidByte) break;
        i += len;
    }
    return i;
}

bool valid_utf8(std::string_view s) { return valid_utf8_prefix(s) == s.size(); }

bool utf8_incomplete_prefix(const unsigned char* s, size_t n) {
    const size_t want = announced_length(s[0]);
    if (want <= n || want == 0) return false;
    for (size_t i = 1; i < n; ++i) {
        if ((s[i] & 0xC0) != 0x80) return false;
    }
    if (n >= 2) {  // the second byte's range rules out overlongs, surrogates and > U+10FFFF
        const unsigned char b0 = s[0], b1 = s[1];
        if ((b0 == 0xE0 && b1 < 0xA0) || (b0 == 0xED && b1 > 0x9F) || (b0 == 0xF0 && b1 < 0x90) ||
            (b0 == 0xF4 && b1 > 0x8F))
            return false;
    }
    return true;
}

void append_utf8(uint32_t cp, std::string* out) {
    if (cp < 0x80) {
        out->push_back(char(cp));
    } else if (cp < 0x800) {
        out->push_back(char(0xC0 | (cp >> 6)));
        out->push_back(char(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
        out->push_back(char(0xE0 | (cp >> 12)));
        out->push_back(char(0x80 | ((cp >> 6) & 0x3F)));
        out->push_back(char(0x80 | (cp & 0x3F)));
    } else {
        out->push_back(char(0xF0 | (cp >> 18)));
        out->push_back(char(0x80 | ((cp >> 12) & 0x3F)));
        out->push_back(char(0x80 | ((cp >> 6) & 0x3F)));
        out->push_back(char(0x80 | (cp & 0x3F)));
    }
}

}  // namespace minigpt
