#include "tokenizer/gpt2_pretokenize.h"

#include <algorithm>

#include "util/utf8.h"

namespace minigpt {

Gpt2PreTokenizer::Char Gpt2PreTokenizer::char_at(size_t pos) const {
    const unsigned char b = s_[pos];
    if (b < 0x80) return {b, 1, classes_(b)};
    uint32_t cp;
    const size_t len = decode_utf8(s_ + pos, n_ - pos, &cp);
    return {cp, len, cp == kInvalidByte ? CharClass::Other : classes_(cp)};
}

size_t Gpt2PreTokenizer::run_end(size_t pos, CharClass cls) const {
    while (pos < n_) {
        const unsigned char b = s_[pos];
        if (b < 0x80) {  // ASCII fast path: no decoding
            if (classes_(b) != cls) break;
            ++pos;
            continue;
        }
        const Char c = char_at(pos);
        if (c.cls != cls) break;
        pos += c.len;
    }
    return pos;
}

size_t Gpt2PreTokenizer::contraction_length(size_t pos) const {
    // pos holds '\''. The alternatives are case-sensitive: "'S" is not one.
    if (pos + 1 >= n_) return 0;
    const unsigned char a = s_[pos + 1];
    if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
    if (pos + 2 >= n_) return 0;
    const unsigned char b = s_[pos + 2];
    if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
    return 0;
}

bool Gpt2PreTokenizer::next(size_t* begin, size_t* end) {
    if (pos_ >= n_) return false;
    const size_t start = pos_;
    *begin = start;
    const Char c = char_at(start);

    if (c.cp == '\'') {
        if (const size_t len = contraction_length(start)) {
            pos_ = start + len;
            *end = pos_;
            return true;
        }
    }
    if (c.cp == ' ' && start + 1 < n_) {
        const Char d = char_at(start + 1);
        if (d.cls != CharClass::Space) {  // " ?\p{L}+", " ?\p{N}+" or " ?[^\s\p{L}\p{N}]+"
            pos_ = run_end(start + 1 + d.len, d.cls);
            *end = pos_;
            return true;
        }
    }
    if (c.cls != CharClass::Space) {
        pos_ = run_end(start + c.len, c.cls);
        *end = pos_;
        return true;
    }

    // Whitespace: find the run and where its last character starts.
    size_t last = start, p = start + c.len;
    while (p < n_) {
        const Char w = char_at(p);
        if (w.cls != CharClass::Space) break;
        last = p;
        p += w.len;
    }
    if (p == n_ || last == start) {
        pos_ = p;  // "\s+(?!\S)" to the end of the text, or "\s+" for a single character
    } else {
        pos_ = last;  // "\s+(?!\S)" gives back the last character
    }
    *end = pos_;
    return true;
}

size_t gpt2_split_point(std::string_view text, size_t from) {
    auto printable = [](char c) { return c > ' ' && c < 0x7f; };
    for (size_t i = std::max<size_t>(from, 2); i < text.size(); ++i)
        if (text[i - 1] == '\n' && printable(text[i]) && printable(text[i - 2])) return i;
    return text.size();
}

}  // namespace minigpt
