#include "util/json.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <stdexcept>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "util/utf8.h"

namespace minigpt {

namespace {

// nlohmann escapes what JSON requires; the bytes below it adds. None of them can
// occur in nlohmann's output outside a string (they are not JSON punctuation,
// digits or literals, nor bytes of a multi-byte UTF-8 sequence), so replacing
// every occurrence in the text escapes exactly the characters inside strings.
const char* extra_escape(char c, JsonEscape escape) {
    if (c == 0x7f) return "\\u007f";
    if (escape != JsonEscape::kHtmlScript) return nullptr;
    if (c == '<') return "\\u003c";
    if (c == '>') return "\\u003e";
    if (c == '&') return "\\u0026";
    return nullptr;
}

std::string finish(std::string text, JsonEscape escape) {
    size_t n = 0;
    for (char c : text) n += extra_escape(c, escape) != nullptr;
    if (n == 0) return text;
    std::string out;
    out.reserve(text.size() + 5 * n);
    for (char c : text) {
        if (const char* e = extra_escape(c, escape)) out += e;
        else out += c;
    }
    return out;
}

const char* type_name(const Json& v) {
    switch (v.type()) {
        case Json::value_t::null: return "null";
        case Json::value_t::boolean: return "a boolean";
        case Json::value_t::number_integer:
        case Json::value_t::number_unsigned:
        case Json::value_t::number_float: return "a number";
        case Json::value_t::string: return "a string";
        case Json::value_t::array: return "an array";
        case Json::value_t::object: return "an object";
        default: return "a value JSON text cannot hold";
    }
}

[[noreturn]] void wrong_type(const std::string& what, const char* expected, const Json& found) {
    throw std::runtime_error(what + ": expected " + expected + ", found " + type_name(found));
}

}  // namespace

std::string json_dump(const Json& v, JsonEscape escape) {
    return finish(v.dump(-1, ' ', false, Json::error_handler_t::replace), escape);
}

std::string json_quote(std::string_view s, JsonEscape escape) { return json_dump(Json(std::string(s)), escape); }

namespace {

// "WHERE: invalid JSON at line L, column C: WHAT" from nlohmann's
// "[json.exception.parse_error.101] parse error at line L, column C: WHAT"; a
// one-line text (a JSONL line whose `where` names the line) gets only the column.
// A number too large for a double is an out_of_range error without a position.
std::string parse_failure(const std::string& where, std::string_view text, const std::string& what) {
    // The message quotes the input it stopped at ("last read: '...'"): invalid UTF-8 there
    // becomes U+FFFD, as in everything we write.
    std::string msg = Json::parse(json_quote(what)).get<std::string>();
    if (msg.compare(0, 16, "[json.exception.") == 0) msg.erase(0, msg.find("] ") + 2);
    if (msg.compare(0, 12, "parse error ") == 0) msg.erase(0, 12);
    if (text.find('\n') == std::string_view::npos && msg.compare(0, 11, "at line 1, ") == 0) msg.erase(3, 8);
    return where + ": invalid JSON" + (msg.compare(0, 3, "at ") == 0 ? " " : ": ") + msg;
}

// The SAX events of {"key": integer, ...}: hands each member on, refuses anything else.
class IntObjectReader : public nlohmann::json_sax<Json> {
public:
    IntObjectReader(std::string_view text, const std::string& where,
                    const std::function<void(std::string& key, int64_t value)>& on_member)
        : text_(text), where_(where), on_member_(on_member) {}

    bool start_object(std::size_t) override {
        if (depth_++ != 0) refuse("an object");
        return true;
    }
    bool end_object() override { return --depth_, true; }
    bool key(std::string& k) override { return key_ = std::move(k), true; }
    bool number_integer(number_integer_t v) override { return value(v); }
    bool number_unsigned(number_unsigned_t v) override {
        if (v > uint64_t(INT64_MAX)) refuse(std::to_string(v) + " (integers are below 2^63)");
        return value(int64_t(v));
    }
    bool number_float(number_float_t, const std::string& text) override { return refuse(text); }
    bool null() override { return refuse("null"); }
    bool boolean(bool) override { return refuse("a boolean"); }
    bool string(std::string&) override { return refuse("a string"); }
    bool binary(binary_t&) override { return refuse("binary data"); }
    bool start_array(std::size_t) override { return refuse("an array"); }
    bool end_array() override { return false; }
    bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& e) override {
        throw std::runtime_error(parse_failure(where_, text_, e.what()));
    }

private:
    bool value(int64_t v) {
        if (depth_ != 1) refuse("a number");
        on_member_(key_, v);
        return true;
    }
    [[noreturn]] bool refuse(const std::string& found) {
        if (depth_ == 0) throw std::runtime_error(where_ + ": expected a JSON object, found " + found);
        throw std::runtime_error(where_ + ": member " + json_quote(key_) + ": expected an integer, found " + found);
    }

    std::string_view text_;
    const std::string& where_;
    const std::function<void(std::string&, int64_t)>& on_member_;
    int depth_ = 0;
    std::string key_;
};

// json_read_int_object's fast path: a hand scanner for well-formed {"key": int, ...}
// (nlohmann's SAX parser takes 37 ms over GPT-2's 1.2 MB vocab.json, which
// `minigpt convert` reads at the speed of copying a file). Returns false on
// anything it does not take, and the SAX parser then reads the text (and names
// the error); the members are handed on only once all of them are read.
bool scan_int_object(std::string_view t, std::vector<std::pair<std::string, int64_t>>& out) {
    if (!valid_utf8(t)) return false;
    const size_t n = t.size();
    size_t i = 0;
    auto skip_space = [&] {
        while (i < n && (t[i] == ' ' || t[i] == '\t' || t[i] == '\n' || t[i] == '\r')) ++i;
    };
    auto hex4 = [&](uint32_t& v) {
        if (i + 4 > n) return false;
        v = 0;
        for (int k = 0; k < 4; ++k) {
            const char c = t[i++];
            const int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
                        : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
            if (d < 0) return false;
            v = v * 16 + uint32_t(d);
        }
        return true;
    };
    skip_space();
    if (i >= n || t[i++] != '{') return false;
    skip_space();
    if (i < n && t[i] == '}') return ++i, skip_space(), i == n;
    for (;;) {
        if (i >= n || t[i++] != '"') return false;
        std::string key;
        for (;;) {
            size_t j = i;
            while (j < n && t[j] != '"' && t[j] != '\\' && static_cast<unsigned char>(t[j]) >= 0x20) ++j;
            key.append(t.data() + i, j - i);
            i = j;
            if (i >= n || static_cast<unsigned char>(t[i]) < 0x20) return false;
            if (t[i++] == '"') break;
            if (i >= n) return false;
            const char e = t[i++];
            uint32_t cp = 0;
            switch (e) {
                case '"': case '\\': case '/': key += e; continue;
                case 'b': key += '\b'; continue;
                case 'f': key += '\f'; continue;
                case 'n': key += '\n'; continue;
                case 'r': key += '\r'; continue;
                case 't': key += '\t'; continue;
                case 'u': break;
                default: return false;
            }
            if (!hex4(cp)) return false;
            if (cp >= 0xDC00 && cp <= 0xDFFF) return false;  // a lone low surrogate
            if (cp >= 0xD800 && cp <= 0xDBFF) {             // a pair: \uD8xx\uDCxx
                uint32_t low = 0;
                if (i + 2 > n || t[i] != '\\' || t[i + 1] != 'u') return false;
                i += 2;
                if (!hex4(low) || low < 0xDC00 || low > 0xDFFF) return false;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
            }
            append_utf8(cp, &key);
        }
        skip_space();
        if (i >= n || t[i++] != ':') return false;
        skip_space();
        const bool negative = i < n && t[i] == '-';
        if (negative) ++i;
        if (i >= n || t[i] < '0' || t[i] > '9' || (t[i] == '0' && i + 1 < n && t[i + 1] >= '0' && t[i + 1] <= '9'))
            return false;
        uint64_t v = 0;
        for (; i < n && t[i] >= '0' && t[i] <= '9'; ++i) {
            if (v > (uint64_t(INT64_MAX) - uint64_t(t[i] - '0')) / 10) return false;
            v = v * 10 + uint64_t(t[i] - '0');
        }
        if (i < n && (t[i] == '.' || t[i] == 'e' || t[i] == 'E')) return false;
        out.emplace_back(std::move(key), negative ? -int64_t(v) : int64_t(v));
        skip_space();
        if (i >= n) return false;
        const char c = t[i++];
        if (c == '}') return skip_space(), i == n;
        if (c != ',') return false;
        skip_space();
    }
}

}  // namespace

Json json_parse(std::string_view text, const std::string& where) {
    try {
        return Json::parse(text.begin(), text.end());
    } catch (const Json::exception& e) {
        throw std::runtime_error(parse_failure(where, text, e.what()));
    }
}

void json_read_int_object(std::string_view text, const std::string& where,
                          const std::function<void(std::string& key, int64_t value)>& on_member) {
    std::vector<std::pair<std::string, int64_t>> members;
    if (scan_int_object(text, members)) {
        for (auto& [key, value] : members) on_member(key, value);
        return;
    }
    IntObjectReader reader(text, where, on_member);
    Json::sax_parse(text.begin(), text.end(), &reader);
}

Json json_rounded(double x, int digits) {
    if (!std::isfinite(x)) return nullptr;
    char buf[40];
    std::snprintf(buf, sizeof buf, "%.*g", digits, x);
    const double r = std::strtod(buf, nullptr);
    if (r == std::floor(r) && std::fabs(r) < 9007199254740992.0) return int64_t(r);  // 2^53: exact in a double
    return r;
}

double json_number(const Json& v, const std::string& what) {
    if (!v.is_number()) wrong_type(what, "a number", v);
    return v.get<double>();
}

int64_t json_int(const Json& v, const std::string& what) {
    const double x = json_number(v, what);
    if (x != std::floor(x) || std::fabs(x) > 9.0e15)
        throw std::runtime_error(what + ": expected an integer, found " + json_dump(v));
    return v.is_number_float() ? int64_t(x) : v.get<int64_t>();
}

const std::string& json_string(const Json& v, const std::string& what) {
    if (!v.is_string()) wrong_type(what, "a string", v);
    return v.get_ref<const std::string&>();
}

bool json_bool(const Json& v, const std::string& what) {
    if (!v.is_boolean()) wrong_type(what, "a boolean", v);
    return v.get<bool>();
}

const Json& json_array(const Json& v, const std::string& what) {
    if (!v.is_array()) wrong_type(what, "an array", v);
    return v;
}

const Json* json_find(const Json& v, std::string_view key) {
    if (!v.is_object()) return nullptr;
    const auto it = v.find(std::string(key));
    return it == v.end() ? nullptr : &*it;
}

const Json& json_member(const Json& v, std::string_view key, const std::string& where) {
    const Json* m = json_find(v, key);
    if (!m) throw std::runtime_error(where + ": missing \"" + std::string(key) + "\"");
    return *m;
}

}  // namespace minigpt
