#include "util/json.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <stdexcept>

#include <nlohmann/json.hpp>

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
