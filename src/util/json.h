// A small JSON reader and writer for the viewer: it reads the trace (JSONL) and
// head-statistics files other commands write, checks them, and writes the data
// block embedded in the HTML page.
//
// Numbers keep the text they were read from, so a value passes through the
// viewer unchanged (no float round trip). Objects keep their key order.
// Written JSON is safe inside an HTML <script> element: '<', '>' and '&' are
// escaped as \u003c etc. inside strings (they cannot occur outside strings).
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace minigpt {

class JsonValue {
public:
    enum class Type : uint8_t { Null, Bool, Number, String, Array, Object };

    JsonValue() = default;
    static JsonValue boolean(bool b);
    static JsonValue number(double v);              // 9 significant digits: exact for a float
    static JsonValue number_text(std::string text);  // already-valid JSON number text
    static JsonValue string(std::string s);
    static JsonValue array();
    static JsonValue object();

    Type type() const { return type_; }
    bool is_null() const { return type_ == Type::Null; }
    bool is_number() const { return type_ == Type::Number; }
    bool is_string() const { return type_ == Type::String; }
    bool is_array() const { return type_ == Type::Array; }
    bool is_object() const { return type_ == Type::Object; }

    // Typed access; each throws std::runtime_error naming `what` when the value
    // has another type (or, for as_int, is not an integer in range).
    double as_number(const std::string& what) const;
    int64_t as_int(const std::string& what) const;
    const std::string& as_string(const std::string& what) const;
    const std::vector<JsonValue>& as_array(const std::string& what) const;
    bool as_bool(const std::string& what) const;

    // Object members: find() returns nullptr when absent (or not an object).
    const JsonValue* find(std::string_view key) const;
    const std::vector<std::pair<std::string, JsonValue>>& members() const { return members_; }
    JsonValue& set(std::string key, JsonValue v);  // adds or replaces; returns the stored value
    JsonValue& push(JsonValue v);                   // appends to an array
    size_t size() const { return type_ == Type::Array ? items_.size() : members_.size(); }

    // Compact JSON text, HTML-script safe (see above).
    void write(std::string& out) const;
    std::string dump() const;

private:
    Type type_ = Type::Null;
    bool bool_ = false;
    std::string text_;  // number text or string value
    std::vector<JsonValue> items_;
    std::vector<std::pair<std::string, JsonValue>> members_;
};

// Parses one JSON text (surrounding whitespace allowed). NaN/nan/inf/Infinity
// (which printf and Python write for non-finite numbers) are read as null. Errors name `where`
// (e.g. "trace.jsonl:12") and the byte column, and say what was expected.
JsonValue parse_json(std::string_view text, const std::string& where);

// Appends s as a JSON string literal (with quotes), HTML-script safe.
void write_json_string(std::string& out, std::string_view s);

}  // namespace minigpt
