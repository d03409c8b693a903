#include "util/read_file.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <new>
#include <stdexcept>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace minigpt {

namespace {

[[noreturn]] void fail(const std::string& name, const std::string& why, const std::string& option) {
    throw std::runtime_error(name + ": cannot read: " + why + (option.empty() ? "" : " (" + option + ")"));
}

// Reads fd to its end. POSIX read() rather than an ifstream: its errno says why
// (EISDIR, EACCES, EIO), which the message passes on.
std::string read_all(int fd, const std::string& name, const std::string& option) {
    std::string out;
    struct stat st {};
    if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0) {
        try {
            out.resize(size_t(st.st_size));
        } catch (const std::bad_alloc&) {  // a huge (or sparse) file: say so rather than std::bad_alloc
            fail(name, std::to_string(st.st_size) + " bytes do not fit in memory", option);
        }
        // A regular file is read straight into the string, not through a buffer.
        size_t got = 0;
        while (got < out.size()) {
            const ssize_t n = ::read(fd, &out[got], out.size() - got);
            if (n > 0) got += size_t(n);
            else if (n == 0) break;  // it shrank since fstat
            else if (errno != EINTR) fail(name, std::strerror(errno), option);
        }
        out.resize(got);
        if (got < size_t(st.st_size)) return out;
    }
    char buf[1 << 16];  // a pipe, a terminal, or a file that grew since fstat
    for (;;) {
        const ssize_t n = ::read(fd, buf, sizeof buf);
        if (n > 0) {
            out.append(buf, size_t(n));
        } else if (n == 0) {
            return out;
        } else if (errno != EINTR) {
            fail(name, std::strerror(errno), option);
        }
    }
}

}  // namespace

std::string read_file(const std::string& path, const std::string& option) {
    if (path == "-") return read_all(STDIN_FILENO, "standard input", option);
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) fail(path, std::strerror(errno), option);
    try {
        std::string out = read_all(fd, path, option);
        ::close(fd);
        return out;
    } catch (...) {
        ::close(fd);
        throw;
    }
}

std::string read_file_range(const std::string& path, uint64_t offset, uint64_t n) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) fail(path, std::strerror(errno), "");
    struct stat st {};
    if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode))  // never more than the file holds
        n = uint64_t(st.st_size) > offset ? std::min<uint64_t>(n, uint64_t(st.st_size) - offset) : 0;
    std::string out;
    try {
        out.resize(size_t(n));
    } catch (const std::bad_alloc&) {
        ::close(fd);
        fail(path, std::to_string(n) + " bytes do not fit in memory", "");
    }
    size_t got = 0;
    while (got < out.size()) {
        const ssize_t r = ::pread(fd, &out[got], out.size() - got, off_t(offset + got));
        if (r > 0) got += size_t(r);
        else if (r == 0) break;
        else if (errno != EINTR) {
            const int e = errno;
            ::close(fd);
            fail(path, std::strerror(e), "");
        }
    }
    ::close(fd);
    out.resize(got);
    return out;
}

}  // namespace minigpt
