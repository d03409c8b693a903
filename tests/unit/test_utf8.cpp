// util/utf8: the one UTF-8 decoder/validator, checked against the Unicode
// Standard's Table 3-7 (well-formed byte sequences), which lists the allowed
// range of every byte instead of computing code points as the decoder does.
// Exhaustive over every 1-, 2- and 3-byte string and over the 4-byte strings
// whose lead is F0..F5; named cases for overlong forms, surrogates, values
// past U+10FFFF and truncated sequences.
#include <doctest/doctest.h>

#include <string>

#include "util/utf8.h"

using namespace minigpt;

namespace {

// Table 3-7: the length of the well-formed sequence at s[0..n), or 0.
size_t table_3_7(const unsigned char* s, size_t n) {
    struct Row {
        unsigned char lo[4], hi[4];
        size_t len;
    };
    static const Row rows[] = {
        {{0x00}, {0x7F}, 1},
        {{0xC2, 0x80}, {0xDF, 0xBF}, 2},
        {{0xE0, 0xA0, 0x80}, {0xE0, 0xBF, 0xBF}, 3},
        {{0xE1, 0x80, 0x80}, {0xEC, 0xBF, 0xBF}, 3},
        {{0xED, 0x80, 0x80}, {0xED, 0x9F, 0xBF}, 3},
        {{0xEE, 0x80, 0x80}, {0xEF, 0xBF, 0xBF}, 3},
        {{0xF0, 0x90, 0x80, 0x80}, {0xF0, 0xBF, 0xBF, 0xBF}, 4},
        {{0xF1, 0x80, 0x80, 0x80}, {0xF3, 0xBF, 0xBF, 0xBF}, 4},
        {{0xF4, 0x80, 0x80, 0x80}, {0xF4, 0x8F, 0xBF, 0xBF}, 4},
    };
    for (const Row& r : rows) {
        if (s[0] < r.lo[0] || s[0] > r.hi[0]) continue;
        if (n < r.len) return 0;
        for (size_t k = 1; k < r.len; ++k)
            if (s[k] < r.lo[k] || s[k] > r.hi[k]) return 0;
        return r.len;
    }
    return 0;
}

// Table 3-7: s[0..n) is a proper prefix of some well-formed sequence (the
// bytes after the second only need 80..BF, so 0x80 completes them).
bool table_incomplete(const unsigned char* s, size_t n) {
    unsigned char buf[4] = {0x80, 0x80, 0x80, 0x80};
    for (size_t k = 0; k < n; ++k) buf[k] = s[k];
    if (n >= 2) return table_3_7(buf, 4) > n;
    for (unsigned b = 0; b < 256; ++b) {
        buf[1] = (unsigned char)b;
        if (table_3_7(buf, 4) > 1) return true;
    }
    return false;
}

// The value the bytes encode (no checks).
uint32_t value_of(const unsigned char* s, size_t len) {
    if (len == 1) return s[0];
    uint32_t cp = s[0] & (0x7Fu >> len);
    for (size_t k = 1; k < len; ++k) cp = (cp << 6) | (s[k] & 0x3Fu);
    return cp;
}

// decode_utf8 and utf8_sequence_length against Table 3-7 on s[0..n).
bool agrees(const unsigned char* s, size_t n) {
    uint32_t cp = 0;
    const size_t got = decode_utf8(s, n, &cp);
    const size_t want = table_3_7(s, n);
    const std::string_view v(reinterpret_cast<const char*>(s), n);
    if (want == 0) return got == 1 && cp == kInvalidByte && utf8_sequence_length(v, 0) == 0;
    return got == want && cp == value_of(s, want) && utf8_sequence_length(v, 0) == want;
}

std::string bytes(std::initializer_list<unsigned> b) {
    std::string s;
    for (unsigned c : b) s += char(c);
    return s;
}

}  // namespace

TEST_CASE("utf8: decode_utf8 equals Table 3-7 on every 1-, 2- and 3-byte string and on 4-byte leads F0..F5") {
    size_t bad = 0, checked = 0;
    unsigned char s[4];
    for (unsigned a = 0; a < 256; ++a) {
        s[0] = (unsigned char)a;
        bad += !agrees(s, 1), ++checked;
        for (unsigned b = 0; b < 256; ++b) {
            s[1] = (unsigned char)b;
            bad += !agrees(s, 2), ++checked;
            for (unsigned c = 0; c < 256; ++c) {
                s[2] = (unsigned char)c;
                bad += !agrees(s, 3), ++checked;
            }
        }
    }
    for (unsigned a = 0xF0; a <= 0xF5; ++a)
        for (unsigned b = 0; b < 256; ++b)
            for (unsigned c = 0; c < 256; ++c)
                for (unsigned d : {0x00u, 0x7Fu, 0x80u, 0x8Fu, 0x90u, 0xBFu, 0xC0u, 0xFFu}) {
                    s[0] = (unsigned char)a, s[1] = (unsigned char)b, s[2] = (unsigned char)c, s[3] = (unsigned char)d;
                    bad += !agrees(s, 4), ++checked;
                }
    MESSAGE(checked << " byte strings checked against Table 3-7, " << bad << " disagree");
    CHECK(bad == 0);
}

TEST_CASE("utf8: overlong forms, surrogates, values past U+10FFFF and truncated sequences are invalid") {
    for (const std::string& s : {bytes({0xC0, 0x80}), bytes({0xC1, 0xBF}),                  // overlong 2-byte
                                 bytes({0xE0, 0x80, 0x80}), bytes({0xE0, 0x9F, 0xBF}),      // overlong 3-byte
                                 bytes({0xF0, 0x80, 0x80, 0x80}), bytes({0xF0, 0x8F, 0xBF, 0xBF}),  // overlong 4
                                 bytes({0xED, 0xA0, 0x80}), bytes({0xED, 0xBF, 0xBF}),      // U+D800, U+DFFF
                                 bytes({0xF4, 0x90, 0x80, 0x80}), bytes({0xF5, 0x80, 0x80, 0x80}),  // > U+10FFFF
                                 bytes({0xF7, 0xBF, 0xBF, 0xBF}), bytes({0xFF}), bytes({0xFE}),
                                 bytes({0xC2}), bytes({0xE0, 0xA0}), bytes({0xF0, 0x90, 0x80}),  // truncated
                                 bytes({0xC2, 0x41}), bytes({0xE1, 0x80, 0x41}), bytes({0x80}), bytes({0xBF})}) {
        CAPTURE(s.size());
        CHECK_FALSE(valid_utf8(s));
        CHECK(utf8_sequence_length(s, 0) == 0);
        CHECK(valid_utf8_prefix("ok" + s) == 2);
    }
    // The edges that are valid: U+0000, U+007F, U+0080, U+07FF, U+0800, U+D7FF, U+E000, U+FFFF, U+10000, U+10FFFF.
    const std::string edges = bytes({0x00, 0x7F, 0xC2, 0x80, 0xDF, 0xBF, 0xE0, 0xA0, 0x80, 0xED, 0x9F, 0xBF, 0xEE, 0x80,
                                     0x80, 0xEF, 0xBF, 0xBF, 0xF0, 0x90, 0x80, 0x80, 0xF4, 0x8F, 0xBF, 0xBF});
    CHECK(valid_utf8(edges));
    CHECK(valid_utf8(""));
    CHECK(valid_utf8_prefix(edges + bytes({0xE2, 0x82})) == edges.size());  // a cut-off euro sign
}

TEST_CASE("utf8: append_utf8 round-trips every scalar value") {
    size_t bad = 0;
    std::string s;
    for (uint32_t cp = 0; cp <= 0x10FFFF; ++cp) {
        if (cp >= 0xD800 && cp <= 0xDFFF) continue;
        s.clear();
        append_utf8(cp, &s);
        uint32_t back = 0;
        const size_t len = decode_utf8(reinterpret_cast<const unsigned char*>(s.data()), s.size(), &back);
        const size_t want = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
        bad += len != s.size() || s.size() != want || back != cp;
    }
    CHECK(bad == 0);
}

TEST_CASE("utf8: utf8_incomplete_prefix holds back exactly the proper prefixes of valid sequences") {
    size_t bad = 0;
    unsigned char s[3];
    for (unsigned a = 0; a < 256; ++a) {
        s[0] = (unsigned char)a;
        bad += utf8_incomplete_prefix(s, 1) != table_incomplete(s, 1);
        for (unsigned b = 0; b < 256; ++b) {
            s[1] = (unsigned char)b;
            bad += utf8_incomplete_prefix(s, 2) != table_incomplete(s, 2);
            for (unsigned c = 0; c < 256; ++c) {
                s[2] = (unsigned char)c;
                bad += utf8_incomplete_prefix(s, 3) != table_incomplete(s, 3);
            }
        }
    }
    CHECK(bad == 0);
    CHECK(utf8_incomplete_prefix(reinterpret_cast<const unsigned char*>("\xE2\x82"), 2));   // € cut after 2 bytes
    CHECK_FALSE(utf8_incomplete_prefix(reinterpret_cast<const unsigned char*>("\xED\xA0"), 2));  // a surrogate's start
    CHECK_FALSE(utf8_incomplete_prefix(reinterpret_cast<const unsigned char*>("\xF4\x90"), 2));  // > U+10FFFF
    CHECK_FALSE(utf8_incomplete_prefix(reinterpret_cast<const unsigned char*>("\xC0"), 1));      // overlong lead
}
