// The one file that compiles cxxopts (see flags.h): Options keeps the commands'
// declarations as plain data and builds a cxxopts::Options from them to parse
// or to print the help.
#include "cli/flags.h"

#include <cxxopts.hpp>

namespace minigpt::cli {

namespace {

// "m,model" -> {"m", "model"}; "batch-size, b ,batch" -> {"batch-size", "b", "batch"}.
std::vector<std::string> split_names(const std::string& names) {
    std::vector<std::string> out;
    size_t start = 0;
    while (start <= names.size()) {
        size_t end = names.find(',', start);
        if (end == std::string::npos) end = names.size();
        std::string name = names.substr(start, end - start);
        const size_t first = name.find_first_not_of(' '), last = name.find_last_not_of(' ');
        if (first != std::string::npos) out.push_back(name.substr(first, last - first + 1));
        start = end + 1;
    }
    return out;
}

// cxxopts' view of the declarations: what parse() and help() run on.
cxxopts::Options to_cxxopts(const std::string& program, const std::string& description,
                            const std::vector<Options::Spec>& specs, const std::vector<std::string>& positional,
                            const std::string& positional_help, size_t width) {
    cxxopts::Options o(program, description);
    o.set_width(width);
    try {
        for (const Options::Spec& s : specs) {
            std::shared_ptr<cxxopts::Value> value;
            if (!s.takes_value) {
                value = cxxopts::value<bool>();
            } else {
                value = cxxopts::value<std::string>();
                if (s.default_value) value->default_value(*s.default_value);
            }
            o.add_options(s.group)(s.names, s.help, value, s.arg_name);
        }
    } catch (const cxxopts::exceptions::exception& e) {
        throw std::logic_error(program + ": bad option declaration: " + e.what());
    }
    if (!positional.empty()) o.parse_positional(positional);
    if (!positional_help.empty()) o.positional_help(positional_help);
    return o;
}

}  // namespace

Options::Adder& Options::Adder::operator()(const std::string& names, const std::string& help) {
    options_.specs_.push_back({group_, names, help, "", false, std::nullopt});
    return *this;
}

Options::Adder& Options::Adder::operator()(const std::string& names, const std::string& help, FlagValue value,
                                           const std::string& arg_name) {
    options_.specs_.push_back({group_, names, help, arg_name, true, std::move(value.default_value)});
    return *this;
}

ParsedFlags Options::parse(int argc, const char* const* argv) const {
    cxxopts::Options o = to_cxxopts(program_, description_, specs_, positional_, positional_help_, width_);
    ParsedFlags out;
    try {
        const cxxopts::ParseResult r = o.parse(argc, argv);
        for (const Spec& s : specs_) out.options_.push_back({split_names(s.names), s.default_value, {}});
        // Every value given, in command-line order, under the option's first long name.
        for (const cxxopts::KeyValue& kv : r.arguments()) out.lookup(kv.key()).given.push_back(kv.value());
        out.unmatched_ = r.unmatched();
    } catch (const cxxopts::exceptions::exception& e) {
        throw UsageError(e.what());
    }
    return out;
}

std::string Options::help(const std::vector<std::string>& groups) const {
    return to_cxxopts(program_, description_, specs_, positional_, positional_help_, width_).help(groups);
}

ParsedFlags::Found& ParsedFlags::lookup(const std::string& name) {
    for (Found& f : options_)
        for (const std::string& n : f.names)
            if (n == name) return f;
    throw std::logic_error("option \"" + name + "\" was never declared");
}

const ParsedFlags::Found& ParsedFlags::lookup(const std::string& name) const {
    return const_cast<ParsedFlags*>(this)->lookup(name);
}

size_t ParsedFlags::count(const std::string& name) const { return lookup(name).given.size(); }

const std::string& ParsedFlags::value(const std::string& name) const {
    const Found& f = lookup(name);
    if (!f.given.empty()) return f.given.back();
    if (!f.default_value) throw UsageError("--" + name + " needs a value");
    return *f.default_value;
}

std::vector<std::string> ParsedFlags::all(const std::string& name) const { return lookup(name).given; }

}  // namespace minigpt::cli
