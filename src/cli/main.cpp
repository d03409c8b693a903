// minigpt: one entry point; the subcommands live in cmd_*.cpp and register
// themselves (commands.h).
#include <algorithm>
#include <cstdio>
#include <exception>
#include <string>

#include "cli/commands.h"
#include "cli/dispatch.h"
#include "cli/flags.h"
#include "util/huge_pages.h"

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
    // Once per process (the CLI fuzz target calls main() again and again).
    static const bool process_set_up = [] {
        minigpt::use_huge_pages_for_heap();  // first: every command's buffers fault in far faster
        // (OpenBLAS loads at its first use: kernels/blas.h.)
        return true;
    }();
    (void)process_set_up;
    using minigpt::cli::Command;
    return minigpt::cli::dispatch(argc, argv, "minigpt", "command", minigpt::cli::command_registry(), usage,
                                  [](const Command& c, int n, char** args) {
                                      try {
                                          return c.run(n, args);
                                      } catch (const minigpt::cli::UsageError& e) {
                                          std::fprintf(stderr, "minigpt %s: %s (see minigpt %s --help)\n", c.name,
                                                       e.what(), c.name);
                                          return 2;
                                      } catch (const std::exception& e) {
                                          std::fprintf(stderr, "minigpt %s: error: %s\n", c.name, e.what());
                                          return 1;
                                      }
                                  });
}
