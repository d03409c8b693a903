#include "util/output_file.h"

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <algorithm>
#include <stdexcept>
#include <vector>
#include <fcntl.h>
#include <unistd.h>

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
    f_ = std::fopen(tmp_.c_str(), "wb");
    if (!f_) throw std::runtime_error(path + ": cannot create: " + std::strerror(errno));
    track(tmp_.c_str());
}

OutputFile::~OutputFile() {
    if (f_) {
        std::fclose(f_);
        std::remove(tmp_.c_str());
        untrack(tmp_.c_str());
    }
}

void OutputFile::write(const void* data, size_t n) {
    if (!f_) throw std::runtime_error(path_ + ": write after commit");
    // In pieces: one write() of many MiB runs several times slower than the same bytes
    // in 256 KiB writes (measured 0.98 s against 0.18 s for 498 MB with dd on the 2-core
    // VM), as the kernel's copy then streams from memory instead of the cache.
    constexpr size_t kPiece = 256 << 10;
    const char* p = static_cast<const char*>(data);
    for (size_t done = 0; done < n;) {
        const size_t k = std::min(kPiece, n - done);
        if (std::fwrite(p + done, 1, k, f_) != k) throw std::runtime_error(path_ + ": write failed: " + std::strerror(errno));
        done += k;
    }
}

void OutputFile::copy_from(int fd, uint64_t offset, uint64_t n, const std::string& source) {
    flush();
    const int out = ::fileno(f_);
    loff_t in_off = loff_t(offset);
    bool kernel_copy = true;
    std::vector<char> buf;
    while (n > 0) {
        ssize_t got = -1;
        if (kernel_copy) {
            got = ::copy_file_range(fd, &in_off, out, nullptr, size_t(std::min<uint64_t>(n, 1u << 30)), 0);
            if (got < 0 && (errno == EXDEV || errno == ENOSYS || errno == EINVAL || errno == EOPNOTSUPP)) {
                kernel_copy = false;  // another file system or an old kernel: copy through a buffer
                continue;
            }
        } else {
            buf.resize(size_t(std::min<uint64_t>(n, 8u << 20)));
            got = ::pread(fd, buf.data(), std::min<size_t>(buf.size(), size_t(n)), in_off);
            if (got > 0) {
                if (std::fwrite(buf.data(), 1, size_t(got), f_) != size_t(got))
                    throw std::runtime_error(path_ + ": write failed: " + std::strerror(errno));
                in_off += got;
            }
        }
        if (got < 0) throw std::runtime_error(source + ": read failed: " + std::strerror(errno));
        if (got == 0) throw std::runtime_error(source + ": file ends " + std::to_string(n) + " bytes early");
        n -= uint64_t(got);
    }
    flush();
    // The kernel copy advanced the descriptor's offset behind stdio's back: resynchronize.
    if (std::fseek(f_, 0, SEEK_END) != 0) throw std::runtime_error(path_ + ": seek failed: " + std::strerror(errno));
}

uint64_t OutputFile::position() {
    const long pos = f_ ? std::ftell(f_) : -1;
    if (pos < 0) throw std::runtime_error(path_ + ": cannot tell the write position: " + std::strerror(errno));
    return uint64_t(pos);
}

void OutputFile::flush() {
    if (f_ && std::fflush(f_) != 0) throw std::runtime_error(path_ + ": write failed: " + std::strerror(errno));
}

void OutputFile::commit() {
    if (!f_) return;
    const bool ok = std::fclose(f_) == 0;
    f_ = nullptr;
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
