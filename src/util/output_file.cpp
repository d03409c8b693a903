#include "util/output_file.h"

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <unistd.h>

namespace minigpt {

OutputFile::OutputFile(const std::string& path) : path_(path), tmp_(path + ".tmp." + std::to_string(::getpid())) {
    f_ = std::fopen(tmp_.c_str(), "wb");
    if (!f_) throw std::runtime_error(path + ": cannot create: " + std::strerror(errno));
}

OutputFile::~OutputFile() {
    if (f_) {
        std::fclose(f_);
        std::remove(tmp_.c_str());
    }
}

void OutputFile::write(const void* data, size_t n) {
    if (!f_) throw std::runtime_error(path_ + ": write after commit");
    if (n && std::fwrite(data, 1, n, f_) != n) throw std::runtime_error(path_ + ": write failed: " + std::strerror(errno));
}

void OutputFile::flush() {
    if (f_ && std::fflush(f_) != 0) throw std::runtime_error(path_ + ": write failed: " + std::strerror(errno));
}

void OutputFile::commit() {
    if (!f_) return;
    const bool ok = std::fclose(f_) == 0;
    f_ = nullptr;
    if (!ok || std::rename(tmp_.c_str(), path_.c_str()) != 0) {
        const int e = errno;
        std::remove(tmp_.c_str());
        throw std::runtime_error(path_ + ": cannot write: " + std::strerror(e));
    }
}

void write_file_atomically(const std::string& path, const std::string& content) {
    OutputFile f(path);
    f.write(content);
    f.commit();
}

}  // namespace minigpt
