#include "tokenizer/gpt2_files.h"

#include <stdexcept>
#include <utility>
#include <vector>

#include "tokenizer/gpt2_bpe.h"
#include "tokenizer/gpt2_byte_map.h"
#include "util/read_file.h"

namespace minigpt {

namespace {

// A JSON reader for exactly one shape: an object whose values are integers.
class VocabJsonParser {
public:
    VocabJsonParser(const std::string& json, const std::string& source) : s_(json), source_(source) {}

    std::vector<std::pair<std::string, int64_t>> parse() {
        std::vector<std::pair<std::string, int64_t>> entries;
        skip_space();
        expect('{', "'{' starting the vocabulary object");
        skip_space();
        if (peek() == '}') {
            ++pos_;
        } else {
            for (;;) {
                skip_space();
                std::string key = parse_string();
                skip_space();
                expect(':', "':' after a token text");
                skip_space();
                entries.emplace_back(std::move(key), parse_id());
                skip_space();
                if (peek() == ',') { ++pos_; continue; }
                expect('}', "',' or '}' after a token id");
                break;
            }
        }
        skip_space();
        if (pos_ != s_.size()) fail("end of file after the vocabulary object");
        return entries;
    }

private:
    [[noreturn]] void fail(const std::string& expected) const {
        std::string found = pos_ >= s_.size() ? "end of file" : "'" + std::string(1, s_[pos_]) + "'";
        throw std::runtime_error(source_ + ": offset " + std::to_string(pos_) + ": expected " + expected +
                                 ", found " + found);
    }
    int peek() const { return pos_ < s_.size() ? (unsigned char)s_[pos_] : -1; }
    void expect(char c, const char* what) {
        if (peek() != (unsigned char)c) fail(what);
        ++pos_;
    }
    void skip_space() {
        while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r'))
            ++pos_;
    }
    uint32_t parse_hex4() {
        uint32_t v = 0;
        for (int i = 0; i < 4; ++i) {
            const int c = peek();
            int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
                  : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
            if (d < 0) fail("4 hexadecimal digits after \\u");
            v = v * 16 + uint32_t(d);
            ++pos_;
        }
        return v;
    }
    std::string parse_string() {
        expect('"', "'\"' starting a token text");
        std::string out;
        for (;;) {
            const int c = peek();
            if (c < 0) fail("'\"' closing the token text");
            if (c < 0x20) fail("no raw control character inside a string (JSON needs an escape)");
            ++pos_;
            if (c == '"') return out;
            if (c != '\\') { out.push_back(char(c)); continue; }
            const int e = peek();
            ++pos_;
            switch (e) {
                case '"': out.push_back('"'); break;
                case '\\': out.push_back('\\'); break;
                case '/': out.push_back('/'); break;
                case 'b': out.push_back('\b'); break;
                case 'f': out.push_back('\f'); break;
                case 'n': out.push_back('\n'); break;
                case 'r': out.push_back('\r'); break;
                case 't': out.push_back('\t'); break;
                case 'u': {
                    uint32_t cp = parse_hex4();
                    if (cp >= 0xD800 && cp <= 0xDBFF) {  // a surrogate pair encodes one code point
                        if (peek() != '\\' || pos_ + 1 >= s_.size() || s_[pos_ + 1] != 'u')
                            fail("a \\u low surrogate after a high surrogate");
                        pos_ += 2;
                        const uint32_t low = parse_hex4();
                        if (low < 0xDC00 || low > 0xDFFF) { pos_ -= 4; fail("a low surrogate (DC00..DFFF)"); }
                        cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
                    } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                        pos_ -= 4;
                        fail("a code point, not a lone low surrogate");
                    }
                    append_utf8(cp, &out);
                    break;
                }
                default:
                    --pos_;
                    fail("an escape (\\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX)");
            }
        }
    }
    int64_t parse_id() {
        const size_t start = pos_;
        int64_t v = 0;
        while (peek() >= '0' && peek() <= '9') {
            v = v * 10 + (s_[pos_] - '0');
            if (v > INT32_MAX) { pos_ = start; fail("a token id below 2^31"); }
            ++pos_;
        }
        if (pos_ == start) fail("a non-negative integer token id");
        if (peek() == '.' || peek() == 'e' || peek() == 'E') fail("an integer token id");
        return v;
    }

    const std::string& s_;
    const std::string& source_;
    size_t pos_ = 0;
};

}  // namespace

std::vector<std::pair<std::string, int64_t>> parse_vocab_json(const std::string& json, const std::string& source) {
    return VocabJsonParser(json, source).parse();
}

TokenizerSpec load_gpt2_files(const std::string& vocab_path, const std::string& merges_path) {
    TokenizerSpec spec;
    spec.model = "gpt2";
    spec.source = vocab_path + " + " + merges_path;

    const auto entries = parse_vocab_json(read_file(vocab_path), vocab_path);
    if (entries.empty()) throw std::runtime_error(vocab_path + ": the vocabulary object is empty");
    int64_t max_id = -1;
    for (const auto& e : entries) max_id = std::max(max_id, e.second);
    // Missing ids become padding tokens: a gap far beyond the entries is a corrupt file,
    // not a vocabulary (and must not allocate 2^31 strings).
    const int64_t max_allowed = 2 * int64_t(entries.size()) + 1024;
    if (max_id > max_allowed)
        throw std::runtime_error(vocab_path + ": token id " + std::to_string(max_id) + " is far beyond the " +
                                 std::to_string(entries.size()) + " entries (ids up to " +
                                 std::to_string(max_allowed) + " are accepted; missing ones become padding)");
    spec.tokens.assign(size_t(max_id + 1), std::string());
    spec.token_types.assign(size_t(max_id + 1), kTokenUnused);
    std::vector<bool> seen(size_t(max_id + 1), false);
    for (const auto& [text, id] : entries) {
        if (seen[size_t(id)])
            throw std::runtime_error(vocab_path + ": id " + std::to_string(id) + " is given to both \"" +
                                     spec.tokens[size_t(id)] + "\" and \"" + text + "\"");
        seen[size_t(id)] = true;
        spec.tokens[size_t(id)] = text;
        const bool special = text.size() >= 4 && text.compare(0, 2, "<|") == 0 &&
                             text.compare(text.size() - 2, 2, "|>") == 0;
        spec.token_types[size_t(id)] = special ? kTokenControl : kTokenNormal;
        if (text == "<|endoftext|>") spec.bos_id = spec.eos_id = int32_t(id);
    }
    for (size_t id = 0; id < seen.size(); ++id)
        if (!seen[id]) spec.tokens[id] = "[PAD" + std::to_string(id) + "]";

    const std::string merges = read_file(merges_path);
    size_t line_no = 0;
    for (size_t pos = 0; pos < merges.size();) {
        size_t end = merges.find('\n', pos);
        if (end == std::string::npos) end = merges.size();
        std::string line = merges.substr(pos, end - pos);
        pos = end + 1;
        ++line_no;
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.empty() || (line_no == 1 && line.compare(0, 8, "#version") == 0)) continue;
        const size_t space = line.find(' ');
        if (space == std::string::npos || space == 0 || space + 1 == line.size() ||
            line.find(' ', space + 1) != std::string::npos)
            throw std::runtime_error(merges_path + ": line " + std::to_string(line_no) +
                                     ": expected two token texts separated by one space, found \"" + line + "\"");
        spec.merges.push_back(std::move(line));
    }
    return spec;
}

}  // namespace minigpt
