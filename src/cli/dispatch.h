// Picking a command by its name, for both levels of the command line:
// `minigpt COMMAND` (main.cpp) and `minigpt heads SUBCOMMAND` (cmd_heads.cpp).
//
//   return dispatch(argc, argv, "minigpt heads", "subcommand", kSubs, usage,
//                   [](const Sub& s, int n, char** args) { return s.run(n, args); });
#pragma once
#include <cstdio>
#include <string>

namespace minigpt::cli {

// Runs the entry of `commands` (each with a `name`) that argv[1] names, as
// call(entry, argc - 1, argv + 1) with argv[1] rewritten to "PROGRAM NAME" so
// that its --help and messages name it. No name: usage on stderr, exit 2;
// -h, --help or help: usage on stdout, 0; an unknown name: said, usage, 2.
template <class Commands, class Call>
int dispatch(int argc, char** argv, const std::string& program, const char* kind, const Commands& commands,
             void (*usage)(FILE*), Call call) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const std::string name = argv[1];
    if (name == "-h" || name == "--help" || name == "help") {
        usage(stdout);
        return 0;
    }
    for (const auto& c : commands) {
        if (name != c.name) continue;
        std::string prog = program + " " + c.name;
        argv[1] = prog.data();
        return call(c, argc - 1, argv + 1);
    }
    std::fprintf(stderr, "%s: unknown %s \"%s\"\n", program.c_str(), kind, name.c_str());
    usage(stderr);
    return 2;
}

}  // namespace minigpt::cli
