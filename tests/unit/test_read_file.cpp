// util/read_file: the one whole-file reader. Exact bytes (NUL, invalid UTF-8,
// no newline translation), standard input for "-", and errors that name the
// file, the reason (strerror) and the flag that gave the path.
#include <doctest/doctest.h>

#include <cstdio>
#include <fstream>
#include <stdexcept>
#include <string>

#include <fcntl.h>
#include <unistd.h>

#include "tiny_model.h"
#include "util/read_file.h"

using namespace minigpt;
using minigpt::test::TempPath;

namespace {

void write_bytes(const std::string& path, const std::string& bytes) {
    std::ofstream f(path, std::ios::binary);
    f << bytes;
}

std::string error_of(const std::string& path, const std::string& option = "") {
    try {
        read_file(path, option);
    } catch (const std::runtime_error& e) {
        return e.what();
    }
    return "(no error)";
}

}  // namespace

TEST_CASE("read_file: the exact bytes of a file, empty and larger than one read") {
    TempPath p("read_file.bin");
    std::string bytes("a\0b\r\n\xff\xc0\x80", 8);
    for (int i = 0; i < 200000; ++i) bytes += char('0' + i % 75);  // > the 64 KiB read buffer
    write_bytes(p.path, bytes);
    CHECK(read_file(p.path) == bytes);
    write_bytes(p.path, "");
    CHECK(read_file(p.path).empty());
}

TEST_CASE("read_file: \"-\" reads standard input to its end") {
    TempPath p("read_file_stdin.txt");
    write_bytes(p.path, "from stdin\n");
    const int saved = ::dup(STDIN_FILENO), fd = ::open(p.path.c_str(), O_RDONLY);
    REQUIRE(saved >= 0);
    REQUIRE(fd >= 0);
    REQUIRE(::dup2(fd, STDIN_FILENO) == STDIN_FILENO);
    ::close(fd);
    const std::string got = read_file("-");
    ::dup2(saved, STDIN_FILENO);
    ::close(saved);
    CHECK(got == "from stdin\n");
}

TEST_CASE("read_file: errors name the file, why (strerror) and the flag") {
    CHECK(error_of("/nonexistent/x.txt") == "/nonexistent/x.txt: cannot read: No such file or directory");
    CHECK(error_of("/nonexistent/x.txt", "-f/--file") ==
          "/nonexistent/x.txt: cannot read: No such file or directory (-f/--file)");
    CHECK(error_of("/tmp") == "/tmp: cannot read: Is a directory");
}
