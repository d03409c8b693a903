// Files written all-or-nothing: data goes to "PATH.tmp.PID" and is renamed over
// PATH by commit(); an object destroyed without commit() removes its temporary
// file, so a failure never leaves a partial output behind; SIGINT, SIGTERM and
// SIGHUP remove the temporaries being written before the process dies of them.
#pragma once
#include <cstdint>
#include <cstdio>
#include <string>

namespace minigpt {

class OutputFile {
public:
    explicit OutputFile(const std::string& path);  // throws naming the path
    ~OutputFile();
    OutputFile(const OutputFile&) = delete;
    OutputFile& operator=(const OutputFile&) = delete;

    void write(const void* data, size_t n);
    void write(const std::string& s) { write(s.data(), s.size()); }
    // Appends n bytes of the file open as `fd`, from `offset`, copied by the kernel
    // (copy_file_range: no trip through this process's memory, as cp copies), or by
    // pread/write where the kernel cannot. Throws naming `source` on a short read.
    void copy_from(int fd, uint64_t offset, uint64_t n, const std::string& source);
    uint64_t position();  // bytes written so far
    void flush();  // pushes buffered bytes to the temporary file
    void commit(); // fsync-free close + rename; throws on failure
    FILE* handle() { return f_; }
    const std::string& path() const { return path_; }

private:
    std::string path_, tmp_;
    FILE* f_ = nullptr;
};

// The whole of `content` written to `path` through an OutputFile (all or nothing).
void write_file_atomically(const std::string& path, const std::string& content);

}  // namespace minigpt
