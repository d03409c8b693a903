// Flags, one way for every command. cli/flags.h parses the command line; this file
// declares the options several commands share (one spelling, help text and
// default everywhere) and reads values with range checks whose errors name the
// flag. Every error thrown here is a usage error: main() prints it on one line
// and exits with status 2 (runtime errors, such as a file that cannot be read,
// exit 1).
//
//   Options opts = command_options(argv[0], "What the command does.");
//   add_model_option(opts);                          // -m/--model FILE
//   add_threads_option(opts);                        // -t/--threads N, default: all cores
//   add_ctx_option(opts, "tokens per window; 0 = 512 or the model's context if smaller");
//   opts.add_options()("chunks", "at most N windows", number_value("0"), "N");
//   ParsedFlags args;
//   if (!parse_flags(opts, argc, argv, args)) return 0;        // --help was printed
//   const std::string model = required_option(args, "model", "-m/--model");
//   const int threads = threads_option(args);                   // 1..1024
//   const int64_t c = int_option(args, "ctx-size", at_least(0));
//       // -c -1  ->  "--ctx-size: must be at least 0, got -1", exit 2
//   const AblationMode m = usage_errors("--ablate-mode", [&] { return parse_ablation_mode(s); });
//       // a parser from a lower layer: its exception becomes a usage error naming the flag
//
// Numeric options are declared with number_value() (a string to the parser) and
// read with int_option/float_option, so that "-t abc" names --threads.
#pragma once
#include <algorithm>
#include <cerrno>
#include <climits>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <string>
#include <sys/stat.h>
#include <thread>
#include <vector>

#include "cli/flags.h"
#include "format/checkpoint_kind.h"
#include "util/read_file.h"

namespace minigpt::cli {

// A usage error: main() prints it on one line with a pointer to --help and exits 2.
[[noreturn]] inline void usage_error(const std::string& message) { throw UsageError(message); }

// Runs f (a parser of a flag's value from another layer) and turns what it
// throws into a usage error, prefixed with `flag` unless the message names it.
template <class F>
auto usage_errors(const std::string& flag, F&& f) -> decltype(f()) {
    try {
        return f();
    } catch (const UsageError&) {
        throw;
    } catch (const std::exception& e) {
        const std::string what = e.what();
        usage_error(what.find(flag) == std::string::npos ? flag + ": " + what : what);
    }
}

// ---------------------------------------------------------------- declaring

// Every hardware thread, as llama.cpp uses by default (1 when unknown).
inline int default_threads() {
    return int(std::clamp<unsigned>(std::thread::hardware_concurrency(), 1u, 1024u));
}

// A numeric option's value, read with int_option/float_option (see above).
inline FlagValue number_value(const std::string& default_value = "") {
    return default_value.empty() ? text_value() : text_value(default_value);
}

// The command's options with -h/--help, laid out 100 columns wide.
inline Options command_options(const std::string& program, const std::string& description) {
    Options opts(program, description);
    opts.set_width(100);
    opts.add_options()("h,help", "this help");
    return opts;
}

inline void add_model_option(Options& opts, const std::string& help = "GGUF model file",
                             const std::string& group = "") {
    opts.add_options(group)("m,model", help, text_value(), "FILE");
}

inline void add_threads_option(Options& opts, const std::string& group = "") {
    opts.add_options(group)("t,threads", "threads; every core unless given, as llama.cpp",
                            number_value(std::to_string(default_threads())), "N");
}

// -c/--ctx-size: what 0 (or the default) means differs by command, so the help says it.
inline void add_ctx_option(Options& opts, const std::string& help, const std::string& default_value = "0",
                           const std::string& group = "") {
    opts.add_options(group)("c,ctx-size", help, number_value(default_value), "N");
}

// -b/--batch-size (--batch, the older spelling of logits and heads logits, is still
// accepted; the help shows the first long name, hence this order).
inline void add_batch_option(Options& opts, const std::string& group = "") {
    opts.add_options(group)("batch-size,b,batch", "tokens run through the model at once", number_value("512"), "N");
}

inline void add_prompt_option(Options& opts, const std::string& help, const std::string& group = "") {
    opts.add_options(group)("p,prompt", help, text_value(), "TEXT");
}

inline void add_file_option(Options& opts, const std::string& help, const std::string& group = "") {
    opts.add_options(group)("f,file", help, text_value(), "FILE");
}

inline void add_ids_option(Options& opts, const std::string& help = "token ids, e.g. \"464 2068 7586\"",
                           const std::string& group = "") {
    opts.add_options(group)("ids", help, text_value(), "IDS");
}

// ---------------------------------------------------------------- parsing

inline void reject_unmatched(const ParsedFlags& r) {
    if (!r.unmatched().empty()) usage_error("unexpected argument \"" + r.unmatched()[0] + "\"");
}

// Parses argv into `out`. Returns false after printing the help (-h/--help;
// `help_groups` orders its sections); refuses stray positional arguments.
inline bool parse_flags(Options& opts, int argc, char** argv, ParsedFlags& out,
                        const std::vector<std::string>& help_groups = {}) {
    out = opts.parse(argc, argv);
    if (out.count("help")) {
        std::printf("%s\n", opts.help(help_groups).c_str());
        return false;
    }
    reject_unmatched(out);
    return true;
}

// ---------------------------------------------------------------- reading

inline bool has(const ParsedFlags& r, const std::string& name) { return r.count(name) > 0; }

// A string option that must be given; `label` is how the message names it ("-m/--model").
inline std::string required_option(const ParsedFlags& r, const std::string& name, const std::string& label) {
    if (!has(r, name)) usage_error(label + " is required");
    return r.value(name);
}

// Integer value of a number_value() option; `ok` checks the range and
// `requirement` says it in words ("must be at least 1").
template <class Check>
int64_t int_option(const ParsedFlags& r, const std::string& name, Check ok, const std::string& requirement) {
    const std::string s = r.value(name);
    char* end = nullptr;
    errno = 0;
    const long long v = std::strtoll(s.c_str(), &end, 10);
    if (s.empty() || *end != '\0' || errno == ERANGE)
        usage_error("--" + name + ": expected an integer, got \"" + s + "\"");
    if (!ok(int64_t(v))) usage_error("--" + name + ": " + requirement + ", got " + s);
    return int64_t(v);
}

// The usual ranges, with their words: at_least(1) "must be at least 1",
// between(1, 1024) "must be between 1 and 1024".
struct IntRange {
    int64_t min, max;
    std::string words() const {
        if (max == INT64_MAX) return "must be at least " + std::to_string(min);
        return "must be between " + std::to_string(min) + " and " + std::to_string(max);
    }
};
inline IntRange at_least(int64_t min) { return {min, INT64_MAX}; }
inline IntRange between(int64_t min, int64_t max) { return {min, max}; }

inline int64_t int_option(const ParsedFlags& r, const std::string& name, IntRange range) {
    return int_option(r, name, [&](int64_t v) { return v >= range.min && v <= range.max; }, range.words());
}

// Finite floating-point value of a number_value() option, checked like int_option.
template <class Check>
float float_option(const ParsedFlags& r, const std::string& name, Check ok, const std::string& requirement) {
    const std::string s = r.value(name);
    char* end = nullptr;
    errno = 0;
    const double v = std::strtod(s.c_str(), &end);
    if (s.empty() || *end != '\0' || errno == ERANGE || !std::isfinite(v))
        usage_error("--" + name + ": expected a number, got \"" + s + "\"");
    if (!ok(v)) usage_error("--" + name + ": " + requirement + ", got " + s);
    return float(v);
}

inline int threads_option(const ParsedFlags& r) { return int(int_option(r, "threads", between(1, 1024))); }

// -c larger than the model's context: the same usage error in every command.
inline void check_ctx_size(int64_t c, int64_t model_ctx) {
    if (c > model_ctx)
        usage_error("--ctx-size " + std::to_string(c) + " exceeds the model's context length of " +
                    std::to_string(model_ctx));
}

// "1 2 3" or "1,2,3" -> ids; a usage error naming --option on anything else.
inline std::vector<int32_t> parse_ids(const std::string& s, const char* option) {
    std::vector<int32_t> ids;
    size_t i = 0;
    while (i < s.size()) {
        if (s[i] == ' ' || s[i] == ',' || s[i] == '\t' || s[i] == '\n') {
            ++i;
            continue;
        }
        size_t j = i;
        while (j < s.size() && s[j] >= '0' && s[j] <= '9') ++j;
        if (j == i || j - i > 9)
            usage_error(std::string("--") + option + ": expected token ids separated by spaces or commas, got \"" + s + "\"");
        ids.push_back(int32_t(std::stol(s.substr(i, j - i))));
        i = j;
    }
    if (ids.empty()) usage_error(std::string("--") + option + ": no token ids given");
    return ids;
}

// A file's whole content ("-" reads standard input); errors name the file and the flag.
inline std::string read_input(const std::string& path, const std::string& option) { return read_file(path, option); }

// Checks that a model file exists and is a regular file before anything is loaded.
// A Hugging Face folder gets the command that converts it (minigpt convert).
inline void require_file(const std::string& path, const std::string& option) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) throw std::runtime_error(option + ": no such file \"" + path + "\"");
    if (S_ISDIR(st.st_mode)) {
        const std::string hint = conversion_hint(CheckpointKind::Folder, path);
        throw std::runtime_error(option + ": \"" + path + "\" is a folder, not a file" + (hint.empty() ? "" : "; " + hint));
    }
    if (!S_ISREG(st.st_mode)) throw std::runtime_error(option + ": \"" + path + "\" is not a regular file");
}

}  // namespace minigpt::cli
