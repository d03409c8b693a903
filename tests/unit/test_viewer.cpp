// The viewer's building blocks: the JSON reader/writer (HTML-script-safe
// strings, invalid UTF-8 repaired, errors with column), base64 against RFC 4648's
// test vectors, and the sqrt-u8 attention quantisation against its stated bound.
#include <doctest/doctest.h>

#include <cmath>
#include <stdexcept>
#include <string>

#include "viewer/data.h"
#include "viewer/html.h"
#include "util/json.h"

using namespace minigpt;

namespace {

std::string str(std::string_view s) {
    std::string out;
    write_json_string(out, s);
    return out;
}

std::string parse_error(const std::string& text) {
    try {
        parse_json(text, "x.json:3");
    } catch (const std::runtime_error& e) {
        return e.what();
    }
    return "";
}

std::string b64(const std::string& s) {
    std::string out;
    append_base64(out, reinterpret_cast<const uint8_t*>(s.data()), s.size());
    return out;
}

}  // namespace

TEST_CASE("viewer json: strings are safe inside an HTML script element") {
    CHECK(str("</script><b>&") == "\"\\u003c/script\\u003e\\u003cb\\u003e\\u0026\"");
    CHECK(str("a\"b\\c\n\t\r\x01") == "\"a\\\"b\\\\c\\n\\t\\r\\u0001\"");
    CHECK(str("caf\xc3\xa9 \xf0\x9f\x98\x80") == "\"caf\xc3\xa9 \xf0\x9f\x98\x80\"");  // valid UTF-8 kept
}

TEST_CASE("viewer json: invalid UTF-8 becomes U+FFFD, one per bad byte") {
    CHECK(str("a\xe2\x82") == "\"a\\ufffd\\ufffd\"");      // truncated 3-byte sequence
    CHECK(str("\xc0\x80") == "\"\\ufffd\\ufffd\"");         // overlong NUL
    CHECK(str("\xed\xa0\x80") == "\"\\ufffd\\ufffd\\ufffd\"");  // a surrogate
    CHECK(str("\xf4\x90\x80\x80") == "\"\\ufffd\\ufffd\\ufffd\\ufffd\"");  // past U+10FFFF
    CHECK(str("\x80z") == "\"\\ufffdz\"");                 // stray continuation byte
}

TEST_CASE("viewer json: parse and write round trip, numbers keep their text, keys their order") {
    const std::string text = R"({"b":[1,-0.5,2.5e-10,true,false,null],"a":{"x":"y"},"n":123456789012})";
    const JsonValue v = parse_json(text, "t");
    CHECK(v.dump() == text);
    CHECK(v.find("n")->as_int("n") == 123456789012LL);
    CHECK(v.find("b")->as_array("b")[2].as_number("") == doctest::Approx(2.5e-10));
    CHECK(v.find("missing") == nullptr);
    CHECK_THROWS_WITH_AS(v.find("a")->as_string("field a"), "field a: expected a string, found an object",
                         std::runtime_error);
    CHECK_THROWS_WITH_AS(parse_json("1.5", "t").as_int("k"), "k: expected an integer, found 1.5", std::runtime_error);
}

TEST_CASE("viewer json: escapes decode to UTF-8; lone surrogates to U+FFFD") {
    CHECK(parse_json(R"("\u00e9\ud83d\ude00\n\/")", "t").as_string("") == "\xc3\xa9\xf0\x9f\x98\x80\n/");
    CHECK(parse_json(R"("\ud800x")", "t").as_string("") == "\xef\xbf\xbdx");
    CHECK(parse_json(R"("\udc00")", "t").as_string("") == "\xef\xbf\xbd");
}

TEST_CASE("viewer json: non-finite numbers from printf or Python read as null") {
    const JsonValue v = parse_json("[nan, NaN, -inf, Infinity, -Infinity, 1]", "t");
    REQUIRE(v.size() == 6);
    for (int i = 0; i < 5; ++i) CHECK(v.as_array("")[size_t(i)].is_null());
    CHECK(JsonValue::number(std::nan("")).dump() == "null");
}

TEST_CASE("viewer json: errors name the place, the column and what was expected") {
    CHECK(parse_error(R"({"a":1,})") == "x.json:3: column 8: invalid JSON: expected a string key, found '}'");
    CHECK(parse_error(R"([1 2])") == "x.json:3: column 4: invalid JSON: expected ',' or ']', found '2'");
    CHECK(parse_error("\"abc") == "x.json:3: column 5: invalid JSON: expected '\"' closing the string, found end of input");
    CHECK(parse_error("01") == "x.json:3: column 2: invalid JSON: no leading zeros in a number, found '1'");
    CHECK(parse_error("\"a\x01\"") == "x.json:3: column 3: invalid JSON: control characters escaped inside strings, found byte 0x01");
    CHECK(parse_error("[1] x") == "x.json:3: column 5: invalid JSON: expected end of input, found 'x'");
    CHECK(parse_error(std::string(300, '[')).find("nesting at most 256 deep") != std::string::npos);
}

TEST_CASE("viewer base64: RFC 4648 test vectors") {
    CHECK(b64("") == "");
    CHECK(b64("f") == "Zg==");
    CHECK(b64("fo") == "Zm8=");
    CHECK(b64("foo") == "Zm9v");
    CHECK(b64("foob") == "Zm9vYg==");
    CHECK(b64("fooba") == "Zm9vYmE=");
    CHECK(b64("foobar") == "Zm9vYmFy");
    CHECK(b64(std::string("\xff\xfe\x00", 3)) == "//4A");
}

TEST_CASE("viewer quantisation: q = round(255 sqrt(w)) within sqrt(w)/255 + 1/260100") {
    CHECK(quantize_attention_weight(0.0f) == 0);
    CHECK(quantize_attention_weight(1.0f) == 255);
    CHECK(quantize_attention_weight(1.0f / 1024) == 8);  // a uniform row over 1 024 tokens stays visible
    CHECK(quantize_attention_weight(-0.5f) == 0);
    CHECK(quantize_attention_weight(1.5f) == 255);
    CHECK(quantize_attention_weight(std::nanf("")) == 0);
    double worst = 0;
    for (int i = 0; i <= 100000; ++i) {
        const float w = float(i) / 100000.0f;
        const double err = std::fabs(dequantize_attention_weight(quantize_attention_weight(w)) - double(w));
        const double bound = std::sqrt(double(w)) / 255 + 1.0 / 260100;
        worst = std::max(worst, err / bound);
        REQUIRE(err <= bound + 1e-12);
    }
    MESSAGE("worst error / bound over 100 001 weights: " << worst);
}
