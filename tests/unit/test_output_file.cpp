// util/output_file.h: all-or-nothing output, and no temporary left by a process
// killed with SIGINT, SIGTERM or SIGHUP while it writes.
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <thread>

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

TEST_CASE("output file: bytes in order through the 2 MiB-aligned writes, reserved ranges and a header written last") {
    // Pieces of every size against the 2 MiB boundaries the writer aligns to: small ones
    // gathered in its buffer, whole aligned blocks straight from the caller, a reserved
    // range in between filled by two threads in odd-sized pieces, last piece first (it
    // leaves the next buffer unaligned until the next boundary), as the converter fills
    // its copied tensors, and a header overwritten at the end, as attention_export and
    // the GGUF writer use it.
    char tmpl[] = "/tmp/minigpt_output_file_XXXXXX";
    REQUIRE(mkdtemp(tmpl));
    const fs::path dir(tmpl), path = dir / "out.bin";
    std::mt19937 rng(7);
    std::string src(3 << 20, '\0');
    for (char& c : src) c = char(rng());
    std::string expected;
    {
        minigpt::OutputFile f(path.string());
        const size_t sizes[] = {1, 7, 64 << 10, (2 << 20) - 71, 2 << 20, 3, (5 << 20) + 13, 1, 4096, 2 << 20, 0};
        for (int round = 0; round < 2; ++round) {
            for (size_t n : sizes) {
                std::string piece(n, '\0');
                for (char& c : piece) c = char(rng());
                f.write(piece);
                expected += piece;
                CHECK(f.position() == expected.size());
            }
            const size_t reserved = (2 << 20) + 5, half = 1000003;
            const uint64_t at = f.reserve(reserved);
            CHECK(at == expected.size());
            const int fd = f.duplicate_descriptor();
            std::thread second([&] {
                CHECK(::pwrite(fd, src.data() + half, reserved - half, off_t(at + half)) == ssize_t(reserved - half));
            });
            CHECK(::pwrite(fd, src.data(), half, off_t(at)) == ssize_t(half));
            second.join();
            ::close(fd);
            expected += src.substr(0, reserved);
            CHECK(f.position() == expected.size());
        }
        f.write_at(3, "HEADER", 6);
        expected.replace(3, 6, "HEADER");
        CHECK_THROWS(f.write_at(expected.size() - 2, "xyz", 3));  // not yet written
        f.commit();
    }
    std::ifstream in(path, std::ios::binary);
    std::stringstream got;
    got << in.rdbuf();
    CHECK(got.str().size() == expected.size());
    CHECK(got.str() == expected);
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
