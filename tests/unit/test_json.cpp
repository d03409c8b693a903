// util/json.h, the one JSON wrapper (nlohmann-json): the escaping rules
// (control characters, 0x7F, < > & for HTML), the one rule for invalid UTF-8,
// round trips, numbers, typed access and error messages.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "util/json.h"

using namespace minigpt;

namespace {

std::string parse_error(const std::string& text, const std::string& where = "x.json:3") {
    try {
        json_parse(text, where);
    } catch (const std::runtime_error& e) {
        return e.what();
    }
    return "";
}

const std::string kFFFD = "\xEF\xBF\xBD";  // U+FFFD in UTF-8

}  // namespace

TEST_CASE("json: control characters, quote and backslash are escaped") {
    CHECK(json_quote("") == "\"\"");
    CHECK(json_quote("a\"b\\c/") == "\"a\\\"b\\\\c/\"");
    CHECK(json_quote("\b\f\n\r\t") == "\"\\b\\f\\n\\r\\t\"");
    CHECK(json_quote(std::string("\0\x01\x1f", 3)) == "\"\\u0000\\u0001\\u001f\"");
    // Every byte below 0x20 is escaped, so none of them is left raw in the text.
    std::string all;
    for (int c = 0; c < 0x20; ++c) all += char(c);
    const std::string q = json_quote(all);
    for (char c : q) CHECK(uint8_t(c) >= 0x20);
    CHECK(json_parse(q, "t").get<std::string>() == all);
}

TEST_CASE("json: 0x7F (DEL) is escaped in both modes") {
    CHECK(json_quote("a\x7f") == "\"a\\u007f\"");
    CHECK(json_quote("a\x7f", JsonEscape::kHtmlScript) == "\"a\\u007f\"");
    CHECK(json_parse(json_quote("a\x7f"), "t").get<std::string>() == "a\x7f");
}

TEST_CASE("json: < > & are escaped for HTML script elements only") {
    CHECK(json_quote("</script><b>&") == "\"</script><b>&\"");
    CHECK(json_quote("</script><b>&", JsonEscape::kHtmlScript) == "\"\\u003c/script\\u003e\\u003cb\\u003e\\u0026\"");
    // Keys too, and nested values; what is escaped reads back unchanged.
    const Json v = {{"</script>", {"<!--", "a&b", 1.5}}};
    const std::string html = json_dump(v, JsonEscape::kHtmlScript);
    CHECK(html == "{\"\\u003c/script\\u003e\":[\"\\u003c!--\",\"a\\u0026b\",1.5]}");
    CHECK(html.find_first_of("<>&") == std::string::npos);
    CHECK(json_parse(html, "t") == v);
}

TEST_CASE("json: valid UTF-8 is written as is") {
    CHECK(json_quote("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80") == "\"caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80\"");
}

TEST_CASE("json: invalid UTF-8 becomes one U+FFFD per maximal ill-formed subsequence") {
    // Expected counts are Python's bytes.decode("utf-8", "replace") of the same bytes
    // (Unicode's recommended practice), e.g. b"\xe2\x82".decode("utf-8", "replace") == "\ufffd".
    const std::vector<std::pair<std::string, std::string>> cases = {
        {"a\xE2\x82", "a" + kFFFD},                            // truncated 3-byte sequence: one
        {"\xE2\x82z", kFFFD + "z"},                            // the same before an ASCII byte
        {"\xF0\x9F\x98", kFFFD},                               // truncated 4-byte sequence
        {"a\xC3", "a" + kFFFD},                                // truncated 2-byte sequence
        {"\xC0\x80", kFFFD + kFFFD},                           // overlong NUL: C0 is never valid
        {"\xC0\xAF", kFFFD + kFFFD},                           // overlong '/'
        {"\xED\xA0\x80", kFFFD + kFFFD + kFFFD},               // a surrogate (U+D800)
        {"\xF4\x90\x80\x80", kFFFD + kFFFD + kFFFD + kFFFD},   // past U+10FFFF
        {"\x80z", kFFFD + "z"},                                // stray continuation byte
        {"\xFF\xFEok", kFFFD + kFFFD + "ok"},                  // bytes that never occur in UTF-8
    };
    for (const auto& [bytes, decoded] : cases) {
        CAPTURE(bytes);
        const std::string q = json_quote(bytes);
        CHECK(q == "\"" + decoded + "\"");
        CHECK(json_parse(q, "t").get<std::string>() == decoded);  // the text is valid UTF-8 JSON
    }
    // The same rule inside keys and nested values.
    CHECK(json_dump(Json{{"k\xFF", {"\xC3"}}}) == "{\"k" + kFFFD + "\":[\"" + kFFFD + "\"]}");
}

TEST_CASE("json: parse and dump round trip, keys keep their order") {
    const std::string text =
        R"({"b":[1,-0.5,2.5e-10,true,false,null],"a":{"x":"y","\u00e9":"\ud83d\ude00"},"n":123456789012,)"
        R"("big":18446744073709551615,"neg":-9223372036854775808,"f":1e+300,"tiny":5e-324,"one":1.0})";
    const Json v = json_parse(text, "t");
    CHECK(v.begin().key() == "b");  // file order, not sorted
    const std::string escaped = R"("\u00e9":"\ud83d\ude00")";  // written back as UTF-8
    CHECK(json_dump(v) == std::string(text).replace(text.find(escaped), escaped.size(),
                                                   "\"\xC3\xA9\":\"\xF0\x9F\x98\x80\""));
    CHECK(json_parse(json_dump(v), "t") == v);
    // Every double reads back exactly (shortest round-trip text).
    for (double x : {0.1, 1.0 / 3.0, 2.0 / 3.0 * 1e-7, 123456.789, std::numeric_limits<double>::max(),
                     std::numeric_limits<double>::denorm_min(), -0.0})
        CHECK(json_parse(json_dump(Json(x)), "t").get<double>() == x);
    // Every byte 0x00..0x7F and a few UTF-8 characters, in both modes.
    std::string s;
    for (int c = 0; c < 0x80; ++c) s += char(c);
    s += "\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80";
    for (JsonEscape e : {JsonEscape::kPlain, JsonEscape::kHtmlScript}) {
        const Json obj = {{s, s}};
        CHECK(json_parse(json_dump(obj, e), "t") == obj);
    }
}

TEST_CASE("json: non-finite numbers are written as null; json_rounded keeps printf's digits") {
    CHECK(json_dump(Json(std::nan(""))) == "null");
    CHECK(json_dump(Json(-std::numeric_limits<double>::infinity())) == "null");
    CHECK(json_rounded(std::nan(""), 7).is_null());
    CHECK(json_rounded(std::numeric_limits<double>::infinity(), 7).is_null());
    CHECK(json_dump(json_rounded(0.123456789, 7)) == "0.1234568");
    CHECK(json_dump(json_rounded(-2.0, 7)) == "-2");  // integral: no ".0", as %g
    CHECK(json_dump(json_rounded(1.5e-5, 7)) == "1.5e-05");
    CHECK(json_dump(json_rounded(0.00015, 7)) == "0.00015");
    CHECK(json_dump(json_rounded(123456789.0, 7)) == "123456800");  // %g would write 1.234568e+08
    CHECK(json_dump(json_rounded(1e300, 7)) == "1e+300");
    CHECK(json_dump(json_rounded(double(float(0.1f)), 9)) == "0.100000001");
}

TEST_CASE("json: parse errors name the place, line and column") {
    CHECK(parse_error(R"({"a":1,})") ==
          "x.json:3: invalid JSON at column 8: syntax error while parsing object key - unexpected '}'; "
          "expected string literal");
    CHECK(parse_error("[1 2]") ==
          "x.json:3: invalid JSON at column 4: syntax error while parsing array - unexpected number literal; "
          "expected ']'");
    CHECK(parse_error("{\n  \"a\": 1,\n  ]\n}", "f.json") ==
          "f.json: invalid JSON at line 3, column 3: syntax error while parsing object key - unexpected ']'; "
          "expected string literal");
    // The input quoted in the message is made valid UTF-8 by the one rule.
    CHECK(parse_error("\"\xFF\"") == "x.json:3: invalid JSON at column 2: syntax error while parsing value - invalid "
                                     "string: ill-formed UTF-8 byte; last read: '\"" + kFFFD + "'");
    CHECK(parse_error("\"abc").find("x.json:3: invalid JSON at column 5: ") == 0);
    CHECK(parse_error("").find("x.json:3: invalid JSON at column 1: ") == 0);
    CHECK(parse_error("1e400") == "x.json:3: invalid JSON: number overflow parsing '1e400'");
    // Not JSON, so refused: NaN, a trailing comma, raw control characters, ill-formed
    // UTF-8, lone surrogates, leading zeros, trailing text.
    for (const std::string bad : {"NaN", "[1,]", "\"a\x01\"", "\"\xFF\"", "\"\xC0\x80\"", R"("\ud800x")",
                                  R"("\udc00")", "01", "[1] x"}) {
        CAPTURE(bad);
        CHECK(parse_error(bad).find("x.json:3: invalid JSON ") == 0);
    }
}

TEST_CASE("json: deep nesting is parsed and freed without recursion") {
    // nlohmann parses and destroys with explicit stacks: 100 000 levels must not
    // overflow the call stack (a hostile trace or stats file could hold them).
    const int depth = 100000;
    const Json v = json_parse(std::string(depth, '[') + std::string(depth, ']'), "t");
    CHECK(v.is_array());
    CHECK(parse_error(std::string(depth, '[')).find("x.json:3: invalid JSON at column 100001: ") == 0);
}

TEST_CASE("json: typed access names what it reads") {
    const Json v = json_parse(R"({"i":5,"f":1.5,"s":"x","a":[1],"o":{},"b":true,"big":1e16})", "t");
    CHECK(json_int(json_member(v, "i", "t"), "i") == 5);
    CHECK(json_number(json_member(v, "i", "t"), "i") == 5.0);
    CHECK(json_number(json_member(v, "f", "t"), "f") == 1.5);
    CHECK(json_string(json_member(v, "s", "t"), "s") == "x");
    CHECK(json_bool(json_member(v, "b", "t"), "b"));
    CHECK(json_array(json_member(v, "a", "t"), "a").size() == 1);
    CHECK(json_find(v, "missing") == nullptr);
    CHECK(json_find(json_member(v, "a", "t"), "i") == nullptr);  // not an object
    CHECK_THROWS_WITH_AS(json_member(v, "missing", "t.json:2"), "t.json:2: missing \"missing\"", std::runtime_error);
    CHECK_THROWS_WITH_AS(json_int(json_member(v, "f", "t"), "k"), "k: expected an integer, found 1.5", std::runtime_error);
    CHECK_THROWS_WITH_AS(json_int(json_member(v, "big", "t"), "k"), "k: expected an integer, found 1e+16",
                         std::runtime_error);
    CHECK_THROWS_WITH_AS(json_string(json_member(v, "o", "t"), "field o"), "field o: expected a string, found an object",
                         std::runtime_error);
    CHECK_THROWS_WITH_AS(json_number(json_member(v, "s", "t"), "n"), "n: expected a number, found a string",
                         std::runtime_error);
    CHECK_THROWS_WITH_AS(json_array(json_member(v, "b", "t"), "a"), "a: expected an array, found a boolean",
                         std::runtime_error);
}

TEST_CASE("json: an object of integers read member by member") {
    std::vector<std::pair<std::string, int64_t>> got;
    const auto collect = [&](std::string& k, int64_t v) { got.emplace_back(std::move(k), v); };
    json_read_int_object(R"( {"b": 2, "a\"": -1, "\u0120x": 9223372036854775807, "b": 3} )", "v.json", collect);
    const std::vector<std::pair<std::string, int64_t>> want = {
        {"b", 2}, {"a\"", -1}, {"\xC4\xA0x", INT64_MAX}, {"b", 3}};  // file order, duplicates kept
    CHECK(got == want);

    const auto error = [&](const std::string& text) {
        try {
            json_read_int_object(text, "v.json", collect);
        } catch (const std::runtime_error& e) {
            return std::string(e.what());
        }
        return std::string();
    };
    CHECK(error(R"({"a": 1.5})") == "v.json: member \"a\": expected an integer, found 1.5");
    CHECK(error(R"({"a": "1"})") == "v.json: member \"a\": expected an integer, found a string");
    CHECK(error(R"({"a": [1]})") == "v.json: member \"a\": expected an integer, found an array");
    CHECK(error(R"({"a": {}})") == "v.json: member \"a\": expected an integer, found an object");
    CHECK(error(R"({"a": 9223372036854775808})") ==
          "v.json: member \"a\": expected an integer, found 9223372036854775808 (integers are below 2^63)");
    CHECK(error("[1]") == "v.json: expected a JSON object, found an array");
    CHECK(error("7") == "v.json: expected a JSON object, found a number");
    CHECK(error(R"({"a": 1,,})").find("v.json: invalid JSON at column 9: syntax error while parsing object key") == 0);
    CHECK(error(R"({"a\q": 1})").find("v.json: invalid JSON at column 5: syntax error while parsing object key - "
                                      "invalid string: forbidden character after backslash") == 0);
    CHECK(error(R"({"a": 1)").find("v.json: invalid JSON at column 8: ") == 0);
}
