// util/output_file.h: all-or-nothing output, and no temporary left by a process
// killed with SIGINT, SIGTERM or SIGHUP while it writes.
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include <sys/wait.h>
#include <unistd.h>

#include <doctest/doctest.h>

#include "util/output_file.h"

namespace fs = std::filesystem;

namespace {

int files_in(const fs::path& dir) {
    int n = 0;
    for (const auto& e : fs::directory_iterator(dir)) n += e.is_regular_file();
    return n;
}

}  // namespace

TEST_CASE("output file: committed under its name, or nothing at all") {
    char tmpl[] = "/tmp/minigpt_output_file_XXXXXX";
    REQUIRE(mkdtemp(tmpl));
    const fs::path dir(tmpl), path = dir / "out.bin";
    {
        minigpt::OutputFile f(path.string());
        f.write("abc", 3);
        CHECK(files_in(dir) == 1);  // the temporary
        CHECK(!fs::exists(path));
    }  // destroyed without commit: gone
    CHECK(files_in(dir) == 0);
    {
        minigpt::OutputFile f(path.string());
        f.write(std::string(1 << 20, 'x'));
        f.commit();
    }
    CHECK(fs::file_size(path) == (1u << 20));
    fs::remove_all(dir);
}

TEST_CASE("output file: a signal while writing removes the temporary, then kills as the signal does") {
    for (int sig : {SIGINT, SIGTERM, SIGHUP}) {
        CAPTURE(sig);
        char tmpl[] = "/tmp/minigpt_output_file_XXXXXX";
        REQUIRE(mkdtemp(tmpl));
        const fs::path dir(tmpl);
        const pid_t child = fork();
        REQUIRE(child >= 0);
        if (child == 0) {
            std::signal(sig, SIG_DFL);  // as a fresh process has it
            minigpt::OutputFile f((dir / "out.bin").string());
            f.write(std::string(1 << 16, 'x'));
            f.flush();
            std::raise(sig);
            _exit(0);  // not reached
        }
        int status = 0;
        REQUIRE(waitpid(child, &status, 0) == child);
        CHECK(WIFSIGNALED(status));
        CHECK(WTERMSIG(status) == sig);
        CHECK(files_in(dir) == 0);  // neither out.bin nor out.bin.tmp.PID
        fs::remove_all(dir);
    }
}
