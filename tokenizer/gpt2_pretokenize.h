// GPT-2's pre-tokenizer, written out by hand over code points. It splits text
// exactly where tiktoken's "gpt2" pattern (fancy-regex, leftmost-first) does:
//
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//
// Reading of the pattern that this code follows, at each match start:
//   1. an ASCII apostrophe followed by s, t, re, ve, m, ll or d (lower case only);
//   2. an optional U+0020 space, then a maximal run of one class: letters,
//      numbers, or "other" (neither \s, \p{L} nor \p{N}); the space is taken
//      only when the next character is not whitespace;
//   3. a whitespace run that reaches the end of the text is one piece;
//   4. a whitespace run of 2+ characters before a non-space is split before its
//      last character (\s+(?!\S) backtracks by one), and that last character
//      then starts the next match (a U+0020 joins the next word by rule 2);
//   5. a single whitespace character before a non-space is one piece (\s+).
// Classes come from CharClassTable (Unicode 16.0.0, as in tiktoken 1.0.22).
//
// Invalid UTF-8 (tiktoken cannot receive it: it takes a JavaScript string): each
// byte that does not begin a valid sequence is one character of class Other,
// i.e. it is split exactly as U+FFFD (a symbol) would be, and its own byte is
// kept, so the pieces still concatenate to the input.
#pragma once
#include <cstddef>
#include <string_view>

#include "tokenizer/unicode_categories.h"

namespace minigpt {

// The first position at or after `from` where every split of `text` by the pattern
// has a boundary, or text.size() when there is none: just after a lone '\n'
// between two printable ASCII characters other than space ("X\nY"). That '\n' is
// a whitespace run of one before a non-space, one piece by rule 5 both in the
// whole text and at the end of the part before (rule 3); no rule joins whitespace
// to what follows except a U+0020 (rule 2), so Y starts a new match. (After a run
// of two or more, the whole text splits the run before its last character while
// the part before would keep it whole: "\n\n" is one token there, two here.)
// Encoding a text part by part at such points gives exactly the ids of the whole
// (special tokens never hold a '\n').
size_t gpt2_split_point(std::string_view text, size_t from);

class Gpt2PreTokenizer {
public:
    explicit Gpt2PreTokenizer(std::string_view text)
        : s_(reinterpret_cast<const unsigned char*>(text.data())), n_(text.size()),
          classes_(CharClassTable::instance()) {}

    // Stores the next piece as the byte range [*begin, *end); false at the end.
    bool next(size_t* begin, size_t* end);

private:
    struct Char {
        uint32_t cp;
        size_t len;
        CharClass cls;
    };
    Char char_at(size_t pos) const;
    size_t run_end(size_t pos, CharClass cls) const;  // end of the run of `cls` starting at pos
    size_t contraction_length(size_t pos) const;      // 0 when none starts at pos

    const unsigned char* s_;
    size_t n_;
    size_t pos_ = 0;
    const CharClassTable& classes_;
};

}  // namespace minigpt
