// The command line's flag parser: declare options, parse argv, read values.
// cxxopts does the parsing and the help text, behind this header, in flags.cpp
// alone: cxxopts is a header-only template library that costs ~3 s of compile
// time per file that includes it (~8 s under the sanitizers), and every command
// has a file. Everything the commands use is a string (numbers are read and
// range-checked by args.h, whose errors name the flag), so this interface needs
// no templates.
//
//   Options opts("minigpt inspect", "Print a GGUF file's tables.");
//   opts.add_options()("m,model", "GGUF file", text_value(), "FILE")
//                     ("a,all", "print arrays in full");           // a switch
//   opts.add_options("output")("o,output", "file", text_value("out.json"), "FILE");
//   opts.parse_positional({"model"});
//   ParsedFlags args = opts.parse(argc, argv);   // throws UsageError
//   args.count("all");   args.value("model");    // by any of an option's names
#pragma once
#include <cstddef>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace minigpt::cli {

// A mistake in the command line: main() prints it on one line with a pointer to
// --help and exits 2 (other errors exit 1).
struct UsageError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// An option that takes a value (a string), with the value used when it is not given.
struct FlagValue {
    std::optional<std::string> default_value;
};
inline FlagValue text_value() { return {}; }
inline FlagValue text_value(std::string default_value) { return {std::move(default_value)}; }

class ParsedFlags;

class Options {
public:
    Options(std::string program, std::string description)
        : program_(std::move(program)), description_(std::move(description)) {}

    // opts.add_options(group)(names, help)(names, help, value, arg_name)...: names
    // as "m,model" (short and long) or "batch-size,b,batch" (the first long name is
    // the one the help shows); an option without a value is a switch.
    class Adder {
    public:
        Adder(Options& options, std::string group) : options_(options), group_(std::move(group)) {}
        Adder& operator()(const std::string& names, const std::string& help);
        Adder& operator()(const std::string& names, const std::string& help, FlagValue value,
                          const std::string& arg_name = "");

    private:
        Options& options_;
        std::string group_;
    };
    Adder add_options(const std::string& group = "") { return Adder(*this, group); }

    // Options that words without a leading '-' fill, in order.
    void parse_positional(std::vector<std::string> names) { positional_ = std::move(names); }
    // What the help's usage line shows for them ("SRC OUT.gguf").
    void positional_help(std::string text) { positional_help_ = std::move(text); }
    void set_width(size_t columns) { width_ = columns; }

    // Throws UsageError on an unknown option, a missing value or a malformed word.
    ParsedFlags parse(int argc, const char* const* argv) const;
    // The help text; `groups` orders its sections ("" is the ungrouped one).
    std::string help(const std::vector<std::string>& groups = {}) const;

    struct Spec {
        std::string group, names, help, arg_name;
        bool takes_value = false;
        std::optional<std::string> default_value;
    };

private:
    std::string program_, description_, positional_help_;
    std::vector<std::string> positional_;
    std::vector<Spec> specs_;
    size_t width_ = 76;
};

// What parse() found. Options are looked up by any of their names; a name that
// was never declared is a bug in the command, reported as std::logic_error.
class ParsedFlags {
public:
    // How many times the option was given (0 or more; a default does not count).
    size_t count(const std::string& name) const;
    // The option's last value, or its default; UsageError when it has neither.
    const std::string& value(const std::string& name) const;
    // Every value given to the option, in command-line order.
    std::vector<std::string> all(const std::string& name) const;
    // Words no option took (parse() does not refuse them; args.h does).
    const std::vector<std::string>& unmatched() const { return unmatched_; }

private:
    friend class Options;
    struct Found {
        std::vector<std::string> names;  // short and long, without dashes
        std::optional<std::string> default_value;
        std::vector<std::string> given;  // every value given, in order ("true" for a switch)
    };
    Found& lookup(const std::string& name);
    const Found& lookup(const std::string& name) const;
    std::vector<Found> options_;
    std::vector<std::string> unmatched_;
};

}  // namespace minigpt::cli
