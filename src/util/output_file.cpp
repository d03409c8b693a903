#include "util/output_file.h"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <stdexcept>
#include <unistd.h>
#include <vector>

#include "util/huge_pages.h"

namespace minigpt {

namespace {

// The temporary files being written, for the SIGINT/SIGTERM handler to remove: an
// interrupted command (Ctrl-C during a conversion) leaves neither a partial output
// nor its temporary. Fixed slots of C strings, because a handler may only call
// async-signal-safe functions (unlink, signal, raise).
constexpr int kSlots = 16;
std::atomic<const char*> g_temporaries[kSlots];

extern "C" void remove_temporaries_and_die(int sig) {
    for (auto& slot : g_temporaries)
        if (const char* path = slot.load()) ::unlink(path);
    std::signal(sig, SIG_DFL);
    std::raise(sig);  // the default action: the exit status says which signal
}

void track(const char* path) {
    // The handler replaces only the default action: an ignored signal (nohup) stays
    // ignored, and a handler someone else installed stays theirs.
    for (int sig : {SIGINT, SIGTERM, SIGHUP}) {
        struct sigaction now {};
        if (::sigaction(sig, nullptr, &now) == 0 && !(now.sa_flags & SA_SIGINFO) && now.sa_handler == SIG_DFL)
            std::signal(sig, remove_temporaries_and_die);
    }
    for (auto& slot : g_temporaries) {
        const char* empty = nullptr;
        if (slot.compare_exchange_strong(empty, path)) return;
    }  // all slots taken: this one is still removed by the destructor on any error
}

void untrack(const char* path) {
    for (auto& slot : g_temporaries) {
        const char* mine = path;
        if (slot.compare_exchange_strong(mine, nullptr)) return;
    }
}

}  // namespace

OutputFile::OutputFile(const std::string& path) : path_(path), tmp_(path + ".tmp." + std::to_string(::getpid())) {
    fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (fd_ < 0) throw std::runtime_error(path + ": cannot create: " + std::strerror(errno));
    track(tmp_.c_str());
}

OutputFile::~OutputFile() {
    if (fd_ >= 0) {
        ::close(fd_);
        std::remove(tmp_.c_str());
        untrack(tmp_.c_str());
    }
}

void pwrite_all(int fd, const void* data, size_t n, uint64_t offset, const std::string& path) {
    const char* p = static_cast<const char*>(data);
    while (n > 0) {
        const ssize_t w = ::pwrite(fd, p, n, off_t(offset));
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) throw std::runtime_error(path + ": write failed: " + std::strerror(w < 0 ? errno : EIO));
        p += w;
        n -= size_t(w);
        offset += uint64_t(w);
    }
}

// Bytes go out in write()s that end on 2 MiB boundaries of the file: small pieces
// (metadata, biases) gather in buffer_ up to the next boundary, and a whole aligned
// 2 MiB of a large piece goes straight from the caller's memory. The kernel then
// keeps each such 2 MiB in the page cache as one huge folio, which a later mapping
// of the file (the model being loaded, format/mapped_file.cpp) maps with one entry:
// on this project's VM the first pass over a 654 MB model's weights took ~20-35 ms
// instead of ~230 ms with the 4 KiB folios that smaller or unaligned writes leave
// (cp and copy_file_range leave those too). Writes of at most 2 MiB also keep the
// kernel's copy reading from the cache (one write() of many MiB ran 5x slower).
// (Large folios can be slow to allocate on that VM, 0.16-1.3 s for 498 MB from run to
// run: the converter, which is timed against cp, writes its tensors in 64 KiB pieces
// instead, format/checkpoint_copy.cpp; a converted model maps slower until it has
// left the cache once.)
void OutputFile::write(const void* data, size_t n) {
    if (fd_ < 0) throw std::runtime_error(path_ + ": write after commit");
    const char* p = static_cast<const char*>(data);
    while (n > 0) {
        const uint64_t boundary = (pos_ / kHugePageBytes + 1) * kHugePageBytes;
        const size_t k = size_t(std::min<uint64_t>(n, boundary - pos_));
        if (buffer_.empty() && k == kHugePageBytes) {
            pwrite_all(fd_, p, k, pos_, path_);  // a whole aligned block: no copy
            pos_ += k;
        } else {
            if (buffer_.empty()) buffer_start_ = pos_;
            buffer_.insert(buffer_.end(), p, p + k);
            pos_ += k;
            if (pos_ == boundary) flush();
        }
        p += k;
        n -= k;
    }
}

void OutputFile::write_at(uint64_t offset, const void* data, size_t n) {
    if (fd_ < 0) throw std::runtime_error(path_ + ": write after commit");
    if (offset + n > pos_) throw std::logic_error(path_ + ": write_at beyond the bytes written");
    flush();
    pwrite_all(fd_, data, n, offset, path_);
}

uint64_t OutputFile::reserve(uint64_t n) {
    if (fd_ < 0) throw std::runtime_error(path_ + ": write after commit");
    flush();
    const uint64_t at = pos_;
    pos_ += n;
    return at;
}

int OutputFile::duplicate_descriptor() const {
    const int fd = fd_ < 0 ? -1 : ::fcntl(fd_, F_DUPFD_CLOEXEC, 0);
    if (fd < 0) throw std::runtime_error(path_ + ": cannot duplicate the file descriptor: " + std::strerror(errno));
    return fd;
}

void OutputFile::flush() {
    if (buffer_.empty()) return;
    pwrite_all(fd_, buffer_.data(), buffer_.size(), buffer_start_, path_);
    buffer_.clear();
}

void OutputFile::commit() {
    if (fd_ < 0) return;
    flush();
    const bool ok = ::close(fd_) == 0;
    fd_ = -1;
    const bool renamed = ok && std::rename(tmp_.c_str(), path_.c_str()) == 0;
    const int e = errno;
    untrack(tmp_.c_str());
    if (!renamed) {
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
