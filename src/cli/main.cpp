// minigpt: one entry point; the subcommands live in cmd_*.cpp and register
// themselves (commands.h).
#include <algorithm>
#include <cstdio>
#include <exception>
#include <string>

#include <cxxopts.hpp>

#include "cli/commands.h"

namespace minigpt::cli {

std::vector<Command>& command_registry() {
    static std::vector<Command> commands;
    return commands;
}

}  // namespace minigpt::cli

namespace {

void usage(FILE* out) {
    auto commands = minigpt::cli::command_registry();
    std::sort(commands.begin(), commands.end(), [](const auto& a, const auto& b) { return a.order < b.order; });
    std::fprintf(out, "usage: minigpt COMMAND [options]   (minigpt COMMAND --help for its options)\n\ncommands:\n");
    for (const auto& c : commands) std::fprintf(out, "  %-11s %s\n", c.name, c.summary);
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const std::string cmd = argv[1];
    if (cmd == "-h" || cmd == "--help" || cmd == "help") {
        usage(stdout);
        return 0;
    }
    for (const auto& c : minigpt::cli::command_registry()) {
        if (cmd != c.name) continue;
        std::string prog = std::string("minigpt ") + c.name;
        argv[1] = prog.data();
        try {
            return c.run(argc - 1, argv + 1);
        } catch (const cxxopts::exceptions::exception& e) {
            std::fprintf(stderr, "minigpt %s: %s (see minigpt %s --help)\n", c.name, e.what(), c.name);
            return 2;
        } catch (const std::exception& e) {
            std::fprintf(stderr, "minigpt %s: error: %s\n", c.name, e.what());
            return 1;
        }
    }
    std::fprintf(stderr, "minigpt: unknown command \"%s\"\n", cmd.c_str());
    usage(stderr);
    return 2;
}
