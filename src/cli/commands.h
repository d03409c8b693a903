// Subcommands of the minigpt command line. Each cmd_*.cpp registers itself with
// a static RegisterCommand object, so adding a command touches no other file:
//
//   static RegisterCommand reg{"inspect", cmd_inspect, "print a GGUF file's metadata", 60};
//
// A command takes the arguments after its name (argv[0] is "minigpt CMD") and
// returns the exit code; errors are thrown (std::runtime_error, or UsageError
// for bad flags, cli/flags.h) and reported once, on one line, by main().
#pragma once
#include <vector>

namespace minigpt::cli {

struct Command {
    const char* name;
    int (*run)(int argc, char** argv);
    const char* summary;
    int order;  // position in `minigpt --help` (smaller first)
};

std::vector<Command>& command_registry();

struct RegisterCommand {
    RegisterCommand(const char* name, int (*run)(int, char**), const char* summary, int order) {
        command_registry().push_back(Command{name, run, summary, order});
    }
};

}  // namespace minigpt::cli
