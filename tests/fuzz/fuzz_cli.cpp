// Fuzz target: the command line. The input is argv after "minigpt", arguments
// separated by NUL bytes (the first is the command). It runs the real main()
// (src/cli/main.cpp compiled with -Dmain=minigpt_main), in an empty scratch
// folder with stdin, stdout and stderr on /dev/null, so no model or input file
// exists: every command parses and checks its options, then stops at its first
// file. `bench` is skipped (with no model it generates and times its own), and
// so is `convert` (it replaces the process with python3 scripts/convert.py).
// The exit code must be 0, 1 or 2. Only built by `make fuzz`; the regressions
// are replayed by tests/e2e/test_bad_inputs.py through the real binary.
#include <cstdio>
#include <cstdlib>
#include <fcntl.h>
#include <string>
#include <unistd.h>
#include <vector>

#include "fuzz_target.h"

int minigpt_main(int argc, char** argv);

namespace minigpt::fuzz {

inline void enter_scratch_folder() {
    static bool done = false;
    if (done) return;
    done = true;
    char tmpl[] = "/tmp/minigpt_fuzz_cli_XXXXXX";
    if (!mkdtemp(tmpl) || chdir(tmpl) != 0) std::abort();
    const int null_fd = open("/dev/null", O_RDWR);
    if (null_fd < 0) std::abort();
    dup2(null_fd, 0);  // libFuzzer's own reports go to its duplicate of stderr (-close_fd_mask=3)
}

inline int fuzz_cli(const uint8_t* data, size_t size) {
    enter_scratch_folder();
    std::vector<std::string> args{"minigpt"};
    std::string cur;
    for (size_t i = 0; i < size; ++i) {
        if (data[i] == 0) {
            args.push_back(cur);
            cur.clear();
        } else {
            cur.push_back(char(data[i]));
        }
    }
    args.push_back(cur);
    if (args.size() > 64) return 0;
    if (args[1] == "bench" || args[1] == "convert") return 0;
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    const int rc = minigpt_main(int(args.size()), argv.data());
    if (rc < 0 || rc > 2) __builtin_trap();
    return 0;
}

FUZZ_TARGET(fuzz_cli)

}  // namespace minigpt::fuzz
