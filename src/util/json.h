// The project's one JSON implementation: nlohmann-json (Debian's
// nlohmann-json3-dev) behind a few functions that fix how we write and read it.
// Every JSON file and line minigpt writes or reads goes through here: traces,
// viewer data, head statistics, perplexity and generate --json output, bench's
// engine reports, GPT-2 vocab.json.
//
// This header only forward-declares the library (<nlohmann/json_fwd.hpp>), so
// including it costs nothing; a .cpp that builds or inspects values includes
// <nlohmann/json.hpp> itself (a few seconds of compile time each).
//
// Writing (json_dump, json_quote): compact (no spaces), object keys in insertion
// order. Inside strings:
//   - \" \\ \b \f \n \r \t, other bytes below 0x20 as \u00XX, and 0x7F (DEL,
//     not a JSON control character but one for terminals and HTML) as \u007f;
//   - invalid UTF-8: each maximal ill-formed subsequence becomes one U+FFFD,
//     written as its UTF-8 bytes EF BF BD (nlohmann's error_handler_t::replace;
//     the same count as Python's bytes.decode("utf-8", "replace")). This is the
//     one rule for invalid UTF-8 everywhere; writers that need the exact bytes
//     (the trace's "hex" member) say so separately;
//   - with JsonEscape::kHtmlScript also '<', '>' and '&' as \u003c \u003e
//     \u0026, so the text can sit inside an HTML <script> element ("</script>"
//     cannot close it). These bytes cannot occur outside strings in JSON text.
// Numbers: integers as integers; doubles as the shortest text that reads back
// to the same double; NaN and infinities as null (JSON has neither).
//
// Reading (json_parse): strict RFC 8259 JSON in valid UTF-8. Anything else
// (NaN, a trailing comma, ill-formed UTF-8, a lone \uD800 surrogate) is an
// error naming the source, line and column.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include <nlohmann/json_fwd.hpp>

namespace minigpt {

// Objects keep their members in insertion (file) order.
using Json = nlohmann::ordered_json;

enum class JsonEscape : uint8_t {
    kPlain,       // the rules above
    kHtmlScript,  // also < > & as \u003c \u003e \u0026
};

// Compact JSON text of v.
std::string json_dump(const Json& v, JsonEscape escape = JsonEscape::kPlain);

// A JSON string literal (with its quotes) for arbitrary bytes.
std::string json_quote(std::string_view s, JsonEscape escape = JsonEscape::kPlain);

// Parses one JSON text (surrounding whitespace allowed). Errors name `where`
// (e.g. "trace.jsonl:12" or a file name): "WHERE: invalid JSON at line L,
// column C: what was expected".
Json json_parse(std::string_view text, const std::string& where);

// Reads a JSON object whose values are all integers ({"a": 1, "b": 2}, e.g.
// GPT-2's vocab.json) member by member in file order, without building it:
// Json keeps members in order and finds a key by a linear search, too slow for
// 50 257 members. Calls on_member(key, value) per member (key may be moved
// from). Errors name `where`: invalid JSON as json_parse, "WHERE: expected a
// JSON object, found ...", "WHERE: member \"KEY\": expected an integer, found 1.5".
void json_read_int_object(std::string_view text, const std::string& where,
                          const std::function<void(std::string& key, int64_t value)>& on_member);

// x rounded to `digits` significant digits (as printf's %.*g), for outputs that
// should not print more digits than the value holds (a float has 9): integral
// results below 2^53 become integers (printed without ".0"), NaN and
// infinities become null.
Json json_rounded(double x, int digits);

// Typed access. Each throws std::runtime_error naming `what` when the value has
// another type: "WHAT: expected a number, found a string"; json_int also when
// the number is not an integer or is beyond +-9e15 ("found 1.5").
double json_number(const Json& v, const std::string& what);
int64_t json_int(const Json& v, const std::string& what);
const std::string& json_string(const Json& v, const std::string& what);
bool json_bool(const Json& v, const std::string& what);
const Json& json_array(const Json& v, const std::string& what);  // v, checked to be an array

// Object members: json_find returns nullptr when absent (or v is not an
// object); json_member throws "WHERE: missing \"KEY\"".
const Json* json_find(const Json& v, std::string_view key);
const Json& json_member(const Json& v, std::string_view key, const std::string& where);

}  // namespace minigpt
