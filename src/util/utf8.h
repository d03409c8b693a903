// UTF-8: the one decoder, validator and encoder of the project. "Valid" is
// Unicode's well-formed UTF-8 (RFC 3629): the shortest form of a scalar value,
// so no overlong forms, no surrogates (U+D800..U+DFFF) and nothing above
// U+10FFFF; lead bytes C0, C1 and F5..FF never occur.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace minigpt {

// What decode_utf8 stores for a byte that does not start a valid sequence.
constexpr uint32_t kInvalidByte = 0xFFFFFFFFu;

// Decodes one character starting at s[0] (n >= 1 bytes available). Returns its
// length in bytes and stores the code point in *cp. A byte that does not start
// a valid sequence (bad lead byte, truncated, overlong, surrogate, beyond
// U+10FFFF) is decoded alone: length 1, *cp = kInvalidByte. Inline: the GPT-2
// pre-tokenizer calls it once per character.
inline size_t decode_utf8(const unsigned char* s, size_t n, uint32_t* cp) {
    const unsigned char b0 = s[0];
    if (b0 < 0x80) {
        *cp = b0;
        return 1;
    }
    auto cont = [&](size_t i) { return i < n && (s[i] & 0xC0) == 0x80; };
    if (b0 >= 0xC2 && b0 <= 0xDF && cont(1)) {
        *cp = (uint32_t(b0 & 0x1F) << 6) | (s[1] & 0x3F);
        return 2;
    }
    if (b0 >= 0xE0 && b0 <= 0xEF && cont(1) && cont(2)) {
        const uint32_t c = (uint32_t(b0 & 0x0F) << 12) | (uint32_t(s[1] & 0x3F) << 6) | (s[2] & 0x3F);
        if (c >= 0x800 && (c < 0xD800 || c > 0xDFFF)) {
            *cp = c;
            return 3;
        }
    }
    if (b0 >= 0xF0 && b0 <= 0xF4 && cont(1) && cont(2) && cont(3)) {
        const uint32_t c = (uint32_t(b0 & 0x07) << 18) | (uint32_t(s[1] & 0x3F) << 12) |
                           (uint32_t(s[2] & 0x3F) << 6) | (s[3] & 0x3F);
        if (c >= 0x10000 && c <= 0x10FFFF) {
            *cp = c;
            return 4;
        }
    }
    *cp = kInvalidByte;
    return 1;
}

// Length of the valid sequence starting at s[i] (i < s.size()), or 0 if the
// byte there does not start one.
inline size_t utf8_sequence_length(std::string_view s, size_t i) {
    uint32_t cp;
    const size_t n = decode_utf8(reinterpret_cast<const unsigned char*>(s.data()) + i, s.size() - i, &cp);
    return cp == kInvalidByte ? 0 : n;
}

// True when the whole of s is valid UTF-8 (the empty string is).
bool valid_utf8(std::string_view s);

// Length of the longest prefix of s that is valid UTF-8.
size_t valid_utf8_prefix(std::string_view s);

// True when s[0..n) (n >= 1) is a proper prefix of some valid sequence: shorter
// than its lead byte announces and still completable (a streaming decoder
// holds such bytes back until the next ones arrive). False for a complete or
// an impossible sequence.
bool utf8_incomplete_prefix(const unsigned char* s, size_t n);

// Appends the UTF-8 encoding of cp (a scalar value: at most U+10FFFF, not a surrogate).
void append_utf8(uint32_t cp, std::string* out);

}  // namespace minigpt
