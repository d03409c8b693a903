// GPT-2 tokenizer pieces on their own: the pre-tokenizer's rules, the invalid
// UTF-8 rule, BPE against a naive transcription of tiktoken's byte_pair_merge,
// special tokens, vocab.json/merges.txt loading and its errors, StreamDecoder.
// (Agreement with tiktoken itself is in test_bpe_golden.cpp.)
#include <doctest/doctest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

#include "tokenizer/gpt2_bpe.h"
#include "tokenizer/gpt2_byte_map.h"
#include "tokenizer/gpt2_files.h"
#include "tokenizer/gpt2_pretokenize.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode_categories.h"
#include "util/utf8.h"
#include "tokenizer_data.h"

using namespace minigpt;
using namespace minigpt::test;

namespace {

const Gpt2BpeTokenizer& gpt2() {
    static const Gpt2BpeTokenizer tok(gpt2_spec());
    return tok;
}

std::vector<std::string> pieces(std::string_view text) {
    std::vector<std::string> out;
    Gpt2PreTokenizer pre(text);
    size_t b, e;
    while (pre.next(&b, &e)) out.emplace_back(text.substr(b, e - b));
    return out;
}

// tiktoken's _byte_pair_merge transcribed naively: ranks are looked up by the
// bytes of the concatenated pair (for GPT-2, rank = id), after the whole-piece
// shortcut. Our implementation ranks pairs through the merges list instead.
std::vector<int32_t> tiktoken_style_bpe(const std::map<std::string, int32_t>& ranks, const std::string& piece) {
    if (auto it = ranks.find(piece); it != ranks.end()) return {it->second};
    std::vector<std::string> parts;
    for (char c : piece) parts.emplace_back(1, c);
    for (;;) {
        int32_t best_rank = INT32_MAX;
        size_t best = 0;
        for (size_t i = 0; i + 1 < parts.size(); ++i) {
            auto it = ranks.find(parts[i] + parts[i + 1]);
            if (it != ranks.end() && it->second < best_rank) best_rank = it->second, best = i;
        }
        if (best_rank == INT32_MAX) break;
        parts[best] += parts[best + 1];
        parts.erase(parts.begin() + long(best) + 1);
    }
    std::vector<int32_t> ids;
    for (const auto& p : parts) ids.push_back(ranks.at(p));
    return ids;
}

const std::map<std::string, int32_t>& tiktoken_ranks() {
    static const std::map<std::string, int32_t> ranks = [] {
        std::map<std::string, int32_t> r;
        for (int32_t id = 0; id < 50256; ++id) r.emplace(gpt2().token_bytes(id), id);
        return r;
    }();
    return ranks;
}

std::string random_bytes(std::mt19937& rng, size_t n) {
    // A mix of ASCII, valid multi-byte sequences and arbitrary (often invalid) bytes.
    static const char* kValid[] = {"é", "中", "😀", "\xC2\xA0", "\xE3\x80\x80", "'s", " ", "\n", "1"};
    std::string s;
    while (s.size() < n) {
        const uint32_t kind = rng() % 4;
        if (kind == 0) s.push_back(char(rng() & 0xFF));
        else if (kind == 1) s += kValid[rng() % (sizeof kValid / sizeof kValid[0])];
        else s.push_back(char(' ' + rng() % 95));
    }
    return s;
}

bool valid_utf8(const std::string& s) {
    const auto* p = reinterpret_cast<const unsigned char*>(s.data());
    for (size_t i = 0; i < s.size();) {
        uint32_t cp;
        i += decode_utf8(p + i, s.size() - i, &cp);
        if (cp == kInvalidByte) return false;
    }
    return true;
}

struct TempDir {
    std::filesystem::path path;
    TempDir() : path(std::filesystem::temp_directory_path() / ("minigpt_tok_" + std::to_string(getpid()))) {
        std::filesystem::create_directories(path);
    }
    ~TempDir() { std::filesystem::remove_all(path); }
    std::string write(const std::string& name, const std::string& content) const {
        const std::string p = (path / name).string();
        std::ofstream(p, std::ios::binary) << content;
        return p;
    }
};

}  // namespace

TEST_CASE("gpt2 pre-tokenizer: the pattern's alternatives, one by one") {
    using V = std::vector<std::string>;
    CHECK(pieces("") == V{});
    CHECK(pieces("Hello world") == V{"Hello", " world"});
    CHECK(pieces("don't DON'T") == V{"don", "'t", " DON", "'", "T"});  // contractions are lower case only
    CHECK(pieces("we'll they're I've he'd I'm") == V{"we", "'ll", " they", "'re", " I", "'ve", " he", "'d", " I", "'m"});
    CHECK(pieces("abc123def") == V{"abc", "123", "def"});
    CHECK(pieces(" 42 !?") == V{" 42", " !?"});
    CHECK(pieces("a  b") == V{"a", " ", " b"});           // \s+(?!\S) leaves the last space to " b"
    CHECK(pieces("a \t b") == V{"a", " \t", " b"});
    CHECK(pieces("a\n\nb") == V{"a", "\n", "\n", "b"});   // single \n before b: \s+
    CHECK(pieces("a   \n") == V{"a", "   \n"});           // whitespace to the end: one piece
    CHECK(pieces("x\xC2\xA0y") == V{"x", "\xC2\xA0", "y"});  // U+00A0 is \s but not " ?"'s space
    CHECK(pieces("x \xC2\xA0y") == V{"x", " ", "\xC2\xA0", "y"});  // a 2-space run before y, split
    CHECK(pieces("x\xE2\x80\x8By") == V{"x", "\xE2\x80\x8B", "y"});  // U+200B is not White_Space: Other
    CHECK(pieces("...'s") == V{"...'", "s"});             // a contraction only starts a match
    CHECK(pieces("e\xCC\x81t\xC3\xA9") == V{"e", "\xCC\x81", "t\xC3\xA9"});  // combining mark is Other
}

TEST_CASE("gpt2 pre-tokenizer: an invalid byte splits exactly like U+FFFD, keeping its own byte") {
    // Replace each invalid byte by U+FFFD, pre-tokenize both texts, and map the
    // piece boundaries back: they must coincide.
    std::mt19937 rng(1234);
    for (int trial = 0; trial < 3000; ++trial) {
        const std::string text = random_bytes(rng, 1 + rng() % 40);
        std::string replaced;
        std::vector<size_t> offset_in_replaced;  // byte offset in text -> offset in replaced
        const auto* p = reinterpret_cast<const unsigned char*>(text.data());
        for (size_t i = 0; i < text.size();) {
            uint32_t cp;
            const size_t len = decode_utf8(p + i, text.size() - i, &cp);
            for (size_t k = 0; k < len; ++k) offset_in_replaced.push_back(replaced.size() + k);
            replaced += cp == kInvalidByte ? std::string("\xEF\xBF\xBD") : text.substr(i, len);
            i += len;
        }
        offset_in_replaced.push_back(replaced.size());
        std::vector<size_t> ends, ends_replaced;
        size_t b, e;
        for (Gpt2PreTokenizer pre(text); pre.next(&b, &e);) ends.push_back(offset_in_replaced[e]);
        for (Gpt2PreTokenizer pre(replaced); pre.next(&b, &e);) ends_replaced.push_back(e);
        REQUIRE_MESSAGE(ends == ends_replaced, "trial " << trial);
        std::string joined;
        for (const auto& s : pieces(text)) joined += s;
        CHECK(joined == text);
    }
}

TEST_CASE("gpt2 bpe: any byte string encodes, and decodes back to itself") {
    const Gpt2BpeTokenizer& tok = gpt2();
    std::mt19937 rng(99);
    for (int trial = 0; trial < 2000; ++trial) {
        const std::string text = random_bytes(rng, rng() % 200);
        const std::vector<int32_t> ids = tok.encode(text);
        REQUIRE(tok.decode(ids) == text);
    }
    std::string all_bytes;
    for (int b = 0; b < 256; ++b) all_bytes.push_back(char(b));
    CHECK(tok.decode(tok.encode(all_bytes)) == all_bytes);
    CHECK(tok.encode("\xFF").size() == 1);  // a lone invalid byte is its single-byte token
}

TEST_CASE("gpt2 bpe: merges by merges.txt rank equal tiktoken's rank-of-bytes merging") {
    // On every distinct piece of the Brown text, on pieces of random bytes, and
    // on long pieces (the heap path, over 64 bytes).
    const Gpt2BpeTokenizer& tok = gpt2();
    const auto& ranks = tiktoken_ranks();
    std::set<std::string> inputs;
    for (const auto& p : pieces(read_all(kTokenizerData + "gpt2_brown.txt"))) inputs.insert(p);
    const size_t n_brown = inputs.size();
    std::mt19937 rng(7);
    for (int i = 0; i < 3000; ++i) inputs.insert(random_bytes(rng, 1 + rng() % 24));
    for (int i = 0; i < 40; ++i) inputs.insert(random_bytes(rng, 65 + rng() % 400));
    inputs.insert(std::string(300, 'a'));
    inputs.insert(std::string(257, ' '));
    std::string long_word;
    for (int i = 0; i < 30; ++i) long_word += "supercalifragilistic";
    inputs.insert(long_word);
    size_t differ = 0;
    for (const auto& piece : inputs) {
        std::vector<int32_t> got;
        tok.encode_piece(piece, &got);
        if (got != tiktoken_style_bpe(ranks, piece) && ++differ <= 5) FAIL_CHECK("piece \"" << piece << "\" differs");
    }
    CHECK(differ == 0);
    MESSAGE(inputs.size() << " pieces (" << n_brown << " from Brown) merge identically");
}

TEST_CASE("gpt2 bpe: <|endoftext|> is text unless allow_special") {
    const Gpt2BpeTokenizer& tok = gpt2();
    CHECK(tok.encode("<|endoftext|>", true) == std::vector<int32_t>{50256});
    CHECK(tok.encode("<|endoftext|>").size() == 7);
    CHECK(tok.decode({50256}) == "<|endoftext|>");
    const std::vector<int32_t> ids = tok.encode("a<|endoftext|>b<|endoftext|>", true);
    REQUIRE(ids.size() == 4);
    CHECK(ids[1] == 50256);
    CHECK(ids[3] == 50256);
    CHECK(tok.bos_id() == 50256);
    CHECK(tok.eos_id() == 50256);
    CHECK_FALSE(tok.add_bos());
    CHECK(tok.vocab_size() == 50257);
    // A spec without token types (as some GGUF files have) finds the same special token.
    TokenizerSpec untyped = gpt2_spec();
    untyped.token_types.clear();
    CHECK(make_tokenizer(untyped)->encode("x<|endoftext|>", true) == tok.encode("x<|endoftext|>", true));
}

TEST_CASE("gpt2 bpe: encode is const and thread-safe") {
    const Gpt2BpeTokenizer& tok = gpt2();
    const std::string text = read_all(kTokenizerData + "gpt2_brown.txt").substr(0, 200000);
    const std::vector<int32_t> want = tok.encode(text);
    std::vector<int32_t> a, b;
    std::thread t1([&] { a = tok.encode(text); });
    std::thread t2([&] { b = tok.encode(text); });
    t1.join();
    t2.join();
    CHECK(a == want);
    CHECK(b == want);
}

TEST_CASE("gpt2 split points: a text encoded part by part gives the ids of the whole") {
    // Every split point the function offers, in a text built to tempt a wrong one:
    // whitespace runs before and after newlines, CRLF, tabs, non-ASCII spaces (U+3000,
    // U+00A0) and letters next to newlines, contractions and digits after them.
    const Gpt2BpeTokenizer& tok = gpt2();
    std::string text;
    const char* lines[] = {"a\nb", "x \ny", "x\n y", "x\n\ny", "x\r\ny", "x\t\ny", "x\n\ty", "7\n's",
                           "x\n\xe3\x80\x80y", "\xc2\xa0\nx", "x\n\xc2\xa0y", "done.\n\nThe", "it's\n'll",
                           "<|endoftext|>\n<|endoftext|>", "end\n"};
    for (int round = 0; round < 3; ++round)
        for (const char* l : lines) text += l;
    const std::vector<int32_t> whole = tok.encode(text, true);
    int splits = 0;
    for (size_t from = 0; from < text.size(); ++from) {
        const size_t p = gpt2_split_point(text, from);
        REQUIRE(p >= from);
        if (p == text.size()) continue;
        std::vector<int32_t> parts = tok.encode(std::string_view(text).substr(0, p), true);
        const std::vector<int32_t> rest = tok.encode(std::string_view(text).substr(p), true);
        parts.insert(parts.end(), rest.begin(), rest.end());
        CAPTURE(p);
        CHECK(parts == whole);
        ++splits;
    }
    CHECK(splits > 0);
    CHECK(gpt2_split_point("no newline at all", 0) == 17);
    CHECK(gpt2_split_point("x\n\ny", 0) == 4);  // after a run of two: no split point
}

TEST_CASE("gpt2 byte map: 256 distinct printable characters, reversible") {
    std::set<uint32_t> seen;
    for (int b = 0; b < 256; ++b) seen.insert(gpt2_byte_to_code_point(uint8_t(b)));
    CHECK(seen.size() == 256);
    CHECK(gpt2_byte_to_code_point(' ') == 0x120);   // 'Ġ'
    CHECK(gpt2_byte_to_code_point('\n') == 0x10A);  // 'Ċ'
    CHECK(gpt2_byte_to_code_point('A') == 'A');
    std::string all, back;
    for (int b = 0; b < 256; ++b) all.push_back(char(b));
    REQUIRE(gpt2_token_text_to_bytes(gpt2_bytes_to_token_text(all), &back));
    CHECK(back == all);
    CHECK_FALSE(gpt2_token_text_to_bytes("\xE4\xB8\xAD", &back));  // U+4E2D is not in the alphabet
}

TEST_CASE("gpt2 files: vocab.json escapes and malformed files") {
    const auto entries = parse_vocab_json(R"( {"a\"b": 0, "\u0120x": 1, "\\\/\n\t": 2, "\ud83d\ude00": 3} )", "t");
    REQUIRE(entries.size() == 4);
    CHECK(entries[0].first == "a\"b");
    CHECK(entries[1].first == "\xC4\xA0x");
    CHECK(entries[2].first == "\\/\n\t");
    CHECK(entries[3].first == "\xF0\x9F\x98\x80");
    CHECK(entries[3].second == 3);

    TempDir tmp;
    const std::string merges = tmp.write("merges.txt", "#version: 0.2\na b\n");
    auto load_vocab = [&](const std::string& json) { return load_gpt2_files(tmp.write("vocab.json", json), merges); };
    CHECK_THROWS_WITH_AS(load_vocab(R"({"a": 0 "b": 1})"),
                         doctest::Contains("vocab.json: invalid JSON at column 11: syntax error while parsing object - "
                                           "unexpected string literal; expected '}'"),
                         std::runtime_error);
    CHECK_THROWS_WITH_AS(load_vocab(R"({"a": -1})"),
                         doctest::Contains("vocab.json: token \"a\": expected a token id below 2^31 and not negative, "
                                           "found -1"),
                         std::runtime_error);
    CHECK_THROWS_WITH_AS(load_vocab(R"({"a": 2147483648})"), doctest::Contains("found 2147483648"), std::runtime_error);
    CHECK_THROWS_WITH_AS(load_vocab(R"({"a": 1.0})"),
                         doctest::Contains("vocab.json: member \"a\": expected an integer, found 1.0"),
                         std::runtime_error);
    CHECK_THROWS_WITH_AS(load_vocab(R"({"a\q": 0})"),
                         doctest::Contains("invalid JSON at column 5: syntax error while parsing object key - invalid "
                                           "string: forbidden character after backslash"),
                         std::runtime_error);
    CHECK_THROWS_WITH_AS(load_vocab(R"({"a": 0, "b": 0})"), doctest::Contains("id 0 is given to both \"a\" and \"b\""),
                         std::runtime_error);
    CHECK_THROWS_WITH_AS(load_vocab(R"({"a": 0)"), doctest::Contains("vocab.json: invalid JSON at column 8: "),
                         std::runtime_error);
    CHECK_THROWS_WITH_AS(load_gpt2_files((tmp.path / "missing.json").string(), merges),
                         doctest::Contains("missing.json: cannot read: No such file or directory"),
                         std::runtime_error);

    // The 256 single-byte tokens, then "ab".
    std::string byte_vocab = "{";
    for (int b = 0; b < 256; ++b) {
        std::string text = gpt2_bytes_to_token_text(std::string(1, char(b)));
        if (text == "\"" || text == "\\") text = "\\" + text;
        byte_vocab += "\"" + text + "\": " + std::to_string(b) + ", ";
    }
    const std::string vocab = tmp.write("v.json", byte_vocab + "\"ab\": 256}");
    CHECK_THROWS_WITH_AS(load_gpt2_files(vocab, tmp.write("m1.txt", "#version: 0.2\na b\nab  b\n")),
                         doctest::Contains("m1.txt: line 3: expected two token texts separated by one space"),
                         std::runtime_error);
    // A merge whose result is not in the vocabulary is caught when the tokenizer is built.
    const TokenizerSpec bad = load_gpt2_files(vocab, tmp.write("m2.txt", "a b\nb a\n"));
    CHECK_THROWS_WITH_AS(make_tokenizer(bad), doctest::Contains("merge 1 \"b a\": its result \"ba\" is not in the vocabulary"),
                         std::runtime_error);
    const auto good = make_tokenizer(load_gpt2_files(vocab, tmp.write("m3.txt", "a b\n")));
    CHECK(good->encode("xaby") == std::vector<int32_t>{'x', 256, 'y'});  // here id = byte value
    // And a vocabulary that lacks single-byte tokens cannot encode every input.
    const TokenizerSpec tiny = load_gpt2_files(tmp.write("v2.json", R"({"a": 0, "b": 1, "ab": 2})"), merges);
    CHECK_THROWS_WITH_AS(make_tokenizer(tiny), doctest::Contains("no token for the single byte 0x00"), std::runtime_error);
}

TEST_CASE("stream decoder: holds incomplete UTF-8, never emits invalid text") {
    const Gpt2BpeTokenizer& tok = gpt2();
    std::istringstream lines(read_all(kTokenizerData + "gpt2_cases.tsv"));
    size_t n = 0;
    for (std::string line; std::getline(lines, line);) {
        if (line.empty() || line[0] == '#') continue;
        std::istringstream fields(line);
        std::string name, mode, hex;
        std::getline(fields, name, '\t');
        std::getline(fields, mode, '\t');
        std::getline(fields, hex, '\t');
        std::string text;
        for (size_t i = 0; i + 1 < hex.size(); i += 2) text.push_back(char(std::stoi(hex.substr(i, 2), nullptr, 16)));
        StreamDecoder dec(tok);
        std::string out;
        for (int32_t id : tok.encode(text)) {
            const std::string chunk = dec.push(id);
            CHECK_MESSAGE(valid_utf8(chunk), name);
            out += chunk;
        }
        out += dec.flush();
        CHECK_MESSAGE(out == text, name);
        ++n;
    }
    CHECK(n >= 150);

    // "€" (E2 82 AC) split over byte tokens: nothing until the last byte arrives.
    StreamDecoder dec(tok);
    const std::vector<int32_t> euro = tok.encode("\xE2\x82\xAC");
    std::vector<int32_t> bytes;
    for (char c : std::string("\xE2\x82\xAC")) tok.encode_piece(std::string(1, c), &bytes);
    CHECK(dec.push(bytes[0]).empty());
    CHECK(dec.push(bytes[1]).empty());
    CHECK(dec.push(bytes[2]) == "\xE2\x82\xAC");
    // An invalid byte comes out as U+FFFD at once; an unfinished tail at flush.
    CHECK(dec.push(tok.encode("\xFF")[0]) == "\xEF\xBF\xBD");
    CHECK(dec.push(bytes[0]).empty());
    CHECK(dec.push(tok.encode("A")[0]) == "\xEF\xBF\xBD" "A");
    CHECK(dec.push(bytes[0]).empty());
    CHECK(dec.flush() == "\xEF\xBF\xBD");
    CHECK(dec.flush().empty());
}
