#include "util/json.h"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <stdexcept>

namespace minigpt {

// ---- construction and access -------------------------------------------------

JsonValue JsonValue::boolean(bool b) {
    JsonValue v;
    v.type_ = Type::Bool;
    v.bool_ = b;
    return v;
}

JsonValue JsonValue::number(double x) {
    if (!std::isfinite(x)) return JsonValue{};  // JSON has no inf/nan: null, as JSON.stringify does
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.9g", x);
    return number_text(buf);
}

JsonValue JsonValue::number_text(std::string text) {
    JsonValue v;
    v.type_ = Type::Number;
    v.text_ = std::move(text);
    return v;
}

JsonValue JsonValue::string(std::string s) {
    JsonValue v;
    v.type_ = Type::String;
    v.text_ = std::move(s);
    return v;
}

JsonValue JsonValue::array() {
    JsonValue v;
    v.type_ = Type::Array;
    return v;
}

JsonValue JsonValue::object() {
    JsonValue v;
    v.type_ = Type::Object;
    return v;
}

namespace {

const char* type_name(JsonValue::Type t) {
    switch (t) {
        case JsonValue::Type::Null: return "null";
        case JsonValue::Type::Bool: return "a boolean";
        case JsonValue::Type::Number: return "a number";
        case JsonValue::Type::String: return "a string";
        case JsonValue::Type::Array: return "an array";
        case JsonValue::Type::Object: return "an object";
    }
    return "?";
}

[[noreturn]] void wrong_type(const std::string& what, const char* expected, JsonValue::Type found) {
    throw std::runtime_error(what + ": expected " + expected + ", found " + type_name(found));
}

}  // namespace

double JsonValue::as_number(const std::string& what) const {
    if (type_ != Type::Number) wrong_type(what, "a number", type_);
    return std::strtod(text_.c_str(), nullptr);
}

int64_t JsonValue::as_int(const std::string& what) const {
    const double x = as_number(what);
    if (x != std::floor(x) || std::fabs(x) > 9.0e15)
        throw std::runtime_error(what + ": expected an integer, found " + text_);
    return int64_t(x);
}

const std::string& JsonValue::as_string(const std::string& what) const {
    if (type_ != Type::String) wrong_type(what, "a string", type_);
    return text_;
}

const std::vector<JsonValue>& JsonValue::as_array(const std::string& what) const {
    if (type_ != Type::Array) wrong_type(what, "an array", type_);
    return items_;
}

bool JsonValue::as_bool(const std::string& what) const {
    if (type_ != Type::Bool) wrong_type(what, "a boolean", type_);
    return bool_;
}

const JsonValue* JsonValue::find(std::string_view key) const {
    for (const auto& [k, v] : members_)
        if (k == key) return &v;
    return nullptr;
}

JsonValue& JsonValue::set(std::string key, JsonValue v) {
    if (type_ != Type::Object) throw std::logic_error("JsonValue::set on a non-object");
    for (auto& [k, old] : members_)
        if (k == key) return old = std::move(v);
    members_.emplace_back(std::move(key), std::move(v));
    return members_.back().second;
}

JsonValue& JsonValue::push(JsonValue v) {
    if (type_ != Type::Array) throw std::logic_error("JsonValue::push on a non-array");
    items_.push_back(std::move(v));
    return items_.back();
}

// ---- writing -----------------------------------------------------------------

namespace {

// Length of the valid UTF-8 sequence starting at s[i], or 0 if it is invalid
// (overlong forms, surrogates and code points above U+10FFFF are invalid).
size_t utf8_sequence_length(std::string_view s, size_t i) {
    const auto b = [&](size_t k) { return uint8_t(s[i + k]); };
    const uint8_t c = b(0);
    size_t n;
    uint32_t cp;
    if (c < 0x80) return 1;
    if (c >= 0xc2 && c <= 0xdf) n = 2, cp = c & 0x1f;
    else if (c >= 0xe0 && c <= 0xef) n = 3, cp = c & 0x0f;
    else if (c >= 0xf0 && c <= 0xf4) n = 4, cp = c & 0x07;
    else return 0;
    if (i + n > s.size()) return 0;
    for (size_t k = 1; k < n; ++k) {
        if ((b(k) & 0xc0) != 0x80) return 0;
        cp = (cp << 6) | (b(k) & 0x3f);
    }
    if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
        return 0;
    return n;
}

}  // namespace

void write_json_string(std::string& out, std::string_view s) {
    static const char* hex = "0123456789abcdef";
    out += '"';
    for (size_t i = 0; i < s.size();) {
        const uint8_t c = uint8_t(s[i]);
        if (c >= 0x80) {
            // Invalid bytes (a token may end inside a UTF-8 sequence) become U+FFFD,
            // so the page is always valid UTF-8.
            const size_t n = utf8_sequence_length(s, i);
            if (n == 0) {
                out += "\\ufffd";
                ++i;
            } else {
                out.append(s.data() + i, n);
                i += n;
            }
            continue;
        }
        switch (c) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\n': out += "\\n"; break;
            case '\r': out += "\\r"; break;
            case '\t': out += "\\t"; break;
            default:
                if (c < 0x20 || c == '<' || c == '>' || c == '&') {
                    out += "\\u00";
                    out += hex[c >> 4];
                    out += hex[c & 15];
                } else {
                    out += char(c);
                }
        }
        ++i;
    }
    out += '"';
}

void JsonValue::write(std::string& out) const {
    switch (type_) {
        case Type::Null: out += "null"; break;
        case Type::Bool: out += bool_ ? "true" : "false"; break;
        case Type::Number: out += text_; break;
        case Type::String: write_json_string(out, text_); break;
        case Type::Array:
            out += '[';
            for (size_t i = 0; i < items_.size(); ++i) {
                if (i) out += ',';
                items_[i].write(out);
            }
            out += ']';
            break;
        case Type::Object:
            out += '{';
            for (size_t i = 0; i < members_.size(); ++i) {
                if (i) out += ',';
                write_json_string(out, members_[i].first);
                out += ':';
                members_[i].second.write(out);
            }
            out += '}';
            break;
    }
}

std::string JsonValue::dump() const {
    std::string s;
    write(s);
    return s;
}

// ---- parsing -----------------------------------------------------------------

namespace {

class Parser {
public:
    Parser(std::string_view text, const std::string& where) : s_(text), where_(where) {}

    JsonValue parse_document() {
        JsonValue v = parse_value(0);
        skip_space();
        if (i_ != s_.size()) fail("expected end of input");
        return v;
    }

private:
    static constexpr int kMaxDepth = 256;

    [[noreturn]] void fail(const std::string& expected) const {
        std::string found = i_ < s_.size() ? "'" + std::string(1, s_[i_]) + "'" : "end of input";
        if (i_ < s_.size() && (uint8_t(s_[i_]) < 0x20 || uint8_t(s_[i_]) >= 0x80)) {
            char buf[16];
            std::snprintf(buf, sizeof buf, "byte 0x%02x", unsigned(uint8_t(s_[i_])));
            found = buf;
        }
        throw std::runtime_error(where_ + ": column " + std::to_string(i_ + 1) + ": invalid JSON: " + expected +
                                 ", found " + found);
    }

    void skip_space() {
        while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r')) ++i_;
    }

    bool eat(char c) {
        if (i_ < s_.size() && s_[i_] == c) {
            ++i_;
            return true;
        }
        return false;
    }

    void expect_word(const char* w) {
        for (const char* p = w; *p; ++p)
            if (!eat(*p)) fail(std::string("expected '") + w + "'");
    }

    JsonValue parse_value(int depth) {
        if (depth > kMaxDepth) fail("nesting at most " + std::to_string(kMaxDepth) + " deep");
        skip_space();
        if (i_ >= s_.size()) fail("expected a value");
        if (non_finite()) return JsonValue{};
        const char c = s_[i_];
        if (c == '{') return parse_object(depth);
        if (c == '[') return parse_array(depth);
        if (c == '"') return JsonValue::string(parse_string());
        if (c == 't') return expect_word("true"), JsonValue::boolean(true);
        if (c == 'f') return expect_word("false"), JsonValue::boolean(false);
        if (c == 'n') return expect_word("null"), JsonValue{};
        if (c == '-' || (c >= '0' && c <= '9')) return parse_number();
        fail("expected a value");
    }

    JsonValue parse_object(int depth) {
        ++i_;  // '{'
        JsonValue obj = JsonValue::object();
        skip_space();
        if (eat('}')) return obj;
        for (;;) {
            skip_space();
            if (i_ >= s_.size() || s_[i_] != '"') fail("expected a string key");
            std::string key = parse_string();
            skip_space();
            if (!eat(':')) fail("expected ':'");
            obj.set(std::move(key), parse_value(depth + 1));
            skip_space();
            if (eat('}')) return obj;
            if (!eat(',')) fail("expected ',' or '}'");
        }
    }

    JsonValue parse_array(int depth) {
        ++i_;  // '['
        JsonValue arr = JsonValue::array();
        skip_space();
        if (eat(']')) return arr;
        for (;;) {
            arr.push(parse_value(depth + 1));
            skip_space();
            if (eat(']')) return arr;
            if (!eat(',')) fail("expected ',' or ']'");
        }
    }

    // NaN and infinities are not JSON, but printf("%g") and Python's json write
    // them (nan, inf, NaN, Infinity); they are read as null, as JSON.stringify
    // would have written them.
    bool non_finite() {
        for (const char* w : {"NaN", "nan", "-nan", "Infinity", "-Infinity", "inf", "-inf"}) {
            const size_t n = std::strlen(w);
            if (s_.substr(i_, n) == w) {
                i_ += n;
                return true;
            }
        }
        return false;
    }

    bool digit() const { return i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9'; }

    JsonValue parse_number() {
        const size_t start = i_;
        eat('-');
        if (eat('0')) {
            if (digit()) fail("no leading zeros in a number");
        } else {
            if (!digit()) fail("expected a digit");
            while (digit()) ++i_;
        }
        if (eat('.')) {
            if (!digit()) fail("expected a digit after '.'");
            while (digit()) ++i_;
        }
        if (i_ < s_.size() && (s_[i_] == 'e' || s_[i_] == 'E')) {
            ++i_;
            if (!eat('+')) eat('-');
            if (!digit()) fail("expected an exponent digit");
            while (digit()) ++i_;
        }
        return JsonValue::number_text(std::string(s_.substr(start, i_ - start)));
    }

    unsigned hex4() {
        unsigned v = 0;
        for (int k = 0; k < 4; ++k, ++i_) {
            if (i_ >= s_.size()) fail("expected 4 hex digits after \\u");
            const char c = s_[i_];
            v <<= 4;
            if (c >= '0' && c <= '9') v |= unsigned(c - '0');
            else if (c >= 'a' && c <= 'f') v |= unsigned(c - 'a' + 10);
            else if (c >= 'A' && c <= 'F') v |= unsigned(c - 'A' + 10);
            else fail("expected 4 hex digits after \\u");
        }
        return v;
    }

    static void append_utf8(std::string& out, uint32_t cp) {
        if (cp < 0x80) {
            out += char(cp);
        } else if (cp < 0x800) {
            out += char(0xc0 | (cp >> 6));
            out += char(0x80 | (cp & 0x3f));
        } else if (cp < 0x10000) {
            out += char(0xe0 | (cp >> 12));
            out += char(0x80 | ((cp >> 6) & 0x3f));
            out += char(0x80 | (cp & 0x3f));
        } else {
            out += char(0xf0 | (cp >> 18));
            out += char(0x80 | ((cp >> 12) & 0x3f));
            out += char(0x80 | ((cp >> 6) & 0x3f));
            out += char(0x80 | (cp & 0x3f));
        }
    }

    std::string parse_string() {
        ++i_;  // opening quote
        std::string out;
        for (;;) {
            if (i_ >= s_.size()) fail("expected '\"' closing the string");
            const char c = s_[i_];
            if (c == '"') {
                ++i_;
                return out;
            }
            if (uint8_t(c) < 0x20) fail("control characters escaped inside strings");
            if (c != '\\') {
                out += c;  // raw bytes pass through; the writer repairs invalid UTF-8
                ++i_;
                continue;
            }
            ++i_;
            if (i_ >= s_.size()) fail("expected an escape character");
            const char e = s_[i_++];
            switch (e) {
                case '"': out += '"'; break;
                case '\\': out += '\\'; break;
                case '/': out += '/'; break;
                case 'b': out += '\b'; break;
                case 'f': out += '\f'; break;
                case 'n': out += '\n'; break;
                case 'r': out += '\r'; break;
                case 't': out += '\t'; break;
                case 'u': {
                    uint32_t cp = hex4();
                    if (cp >= 0xd800 && cp <= 0xdbff && i_ + 1 < s_.size() && s_[i_] == '\\' && s_[i_ + 1] == 'u') {
                        const size_t save = i_;
                        i_ += 2;
                        const uint32_t lo = hex4();
                        if (lo >= 0xdc00 && lo <= 0xdfff) cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                        else i_ = save;  // unpaired: handled below
                    }
                    if (cp >= 0xd800 && cp <= 0xdfff) cp = 0xfffd;  // a lone surrogate has no UTF-8 form
                    append_utf8(out, cp);
                    break;
                }
                default: --i_; fail("expected one of \\\" \\\\ \\/ \\b \\f \\n \\r \\t \\u");
            }
        }
    }

    std::string_view s_;
    const std::string& where_;
    size_t i_ = 0;
};

}  // namespace

JsonValue parse_json(std::string_view text, const std::string& where) {
    return Parser(text, where).parse_document();
}

}  // namespace minigpt
