// Files written all-or-nothing: data goes to "PATH.tmp.PID" and is renamed over
// PATH by commit(); an object destroyed without commit() removes its temporary
// file, so a failure never leaves a partial output behind; SIGINT, SIGTERM and
// SIGHUP remove the temporaries being written before the process dies of them.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace minigpt {

class OutputFile {
public:
    explicit OutputFile(const std::string& path);  // throws naming the path
    ~OutputFile();
    OutputFile(const OutputFile&) = delete;
    OutputFile& operator=(const OutputFile&) = delete;

    // Appends n bytes, in write()s aligned to 2 MiB of the file (see .cpp: the file
    // then maps fast when it is loaded).
    void write(const void* data, size_t n);
    void write(const std::string& s) { write(s.data(), s.size()); }
    // Overwrites bytes already written (a header completed at the end).
    void write_at(uint64_t offset, const void* data, size_t n);
    // Appends n bytes that the caller fills with pwrite() through
    // duplicate_descriptor(), before commit(); returns their offset.
    uint64_t reserve(uint64_t n);
    // A descriptor of the temporary file, for the caller to close: writes through it
    // from other threads stay harmless if this object goes on an error (the file is
    // removed; the writes land in it as it disappears). Throws on failure.
    int duplicate_descriptor() const;
    uint64_t position() const { return pos_; }  // bytes written so far
    void flush();  // pushes buffered bytes to the temporary file
    void commit(); // fsync-free close + rename; throws on failure
    const std::string& path() const { return path_; }

private:
    std::string path_, tmp_;
    int fd_ = -1;
    uint64_t pos_ = 0;           // bytes written so far, buffered ones included
    uint64_t buffer_start_ = 0;  // file offset of buffer_[0]
    std::vector<char> buffer_;   // at most up to the next 2 MiB boundary
};

// All n bytes at `offset` of the file open as `fd` (pwrite until done, through EINTR);
// throws "<path>: write failed: ..." otherwise.
void pwrite_all(int fd, const void* data, size_t n, uint64_t offset, const std::string& path);

// The whole of `content` written to `path` through an OutputFile (all or nothing).
void write_file_atomically(const std::string& path, const std::string& content);

}  // namespace minigpt
