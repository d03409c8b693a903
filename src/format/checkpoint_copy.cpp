#include "format/checkpoint_copy.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>

#include <fcntl.h>
#include <immintrin.h>
#include <unistd.h>

#include "format/quantize.h"

namespace minigpt {

namespace {

// 256 KiB pieces: the kernel's copies stay in the cache (see OutputFile::write).
constexpr uint64_t kChunkFloats = 1u << 16;

float bf16_to_f32(uint16_t h) {
    const uint32_t bits = uint32_t(h) << 16;
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
}

}  // namespace

void transpose_f32(const float* in, float* out, int64_t rows, int64_t cols) {
    // 8x8 blocks in registers (AVX2: unpack, shuffle, swap 128-bit lanes), the edges
    // element by element: a plain loop moves ~1 GB/s, and a GPT-2 124M has 340 MB of
    // Conv1D weights to turn.
    int64_t r0 = 0;
#if defined(__AVX2__)
    for (; r0 + 8 <= rows; r0 += 8) {
        int64_t c0 = 0;
        for (; c0 + 8 <= cols; c0 += 8) {
            __m256 v[8], t[8];
            for (int i = 0; i < 8; ++i) v[i] = _mm256_loadu_ps(in + (r0 + i) * cols + c0);
            for (int i = 0; i < 8; i += 2) {
                t[i] = _mm256_unpacklo_ps(v[i], v[i + 1]);
                t[i + 1] = _mm256_unpackhi_ps(v[i], v[i + 1]);
            }
            for (int i = 0; i < 8; i += 4)
                for (int j = 0; j < 2; ++j) {
                    v[i + j] = _mm256_shuffle_ps(t[i + j], t[i + j + 2], _MM_SHUFFLE(1, 0, 1, 0));
                    v[i + j + 2] = _mm256_shuffle_ps(t[i + j], t[i + j + 2], _MM_SHUFFLE(3, 2, 3, 2));
                }
            // v[0], v[2], v[1], v[3] now hold columns 0, 1, 2, 3 of rows 0-3 (columns 4-7 in
            // their high lanes); v[4..7] the same for rows 4-7.
            const int column_in[4] = {0, 2, 1, 3};
            for (int k = 0; k < 4; ++k) {
                const __m256 a = v[column_in[k]], b = v[4 + column_in[k]];
                _mm256_storeu_ps(out + (c0 + k) * rows + r0, _mm256_permute2f128_ps(a, b, 0x20));
                _mm256_storeu_ps(out + (c0 + k + 4) * rows + r0, _mm256_permute2f128_ps(a, b, 0x31));
            }
        }
        for (int64_t c = c0; c < cols; ++c)
            for (int64_t r = r0; r < r0 + 8; ++r) out[c * rows + r] = in[r * cols + c];
    }
#endif
    for (int64_t r = r0; r < rows; ++r)
        for (int64_t c = 0; c < cols; ++c) out[c * rows + r] = in[r * cols + c];
}

CheckpointCopier::CheckpointCopier(const std::vector<std::string>& paths) : paths_(paths) {
    for (const std::string& p : paths) {
        const int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            for (int f : fds_) ::close(f);
            throw std::runtime_error(p + ": cannot open: " + std::strerror(errno));
        }
        fds_.push_back(fd);
    }
}

CheckpointCopier::~CheckpointCopier() {
    try {
        finish();
    } catch (const std::exception&) {  // unwinding already: the first error is the one reported
    }
    for (int fd : fds_) ::close(fd);
}

void CheckpointCopier::write(const SourceTensor& t, DType type, OutputFile& out) {
    if (type == DType::F32 && t.type == SourceType::F32 && !t.transposed && t.file >= 0) {
        copy_f32(t, out);
        return;
    }
    read_f32(t, values_);
    if (type == DType::F32) {
        out.write(values_.data(), values_.size() * 4);
        return;
    }
    const int64_t row_bytes = dtype_row_bytes(type, t.cols);
    converted_.resize(size_t(row_bytes * t.rows));
    for (int64_t r = 0; r < t.rows; ++r) {
        const float* row = values_.data() + r * t.cols;
        uint8_t* dst = converted_.data() + r * row_bytes;
        if (type == DType::F16) convert_row_f32_to_f16(row, reinterpret_cast<uint16_t*>(dst), t.cols);
        else quantize_row_q8_0(row, reinterpret_cast<BlockQ8_0*>(dst), t.cols, Q8Rounding::kDivide);
    }
    out.write(converted_.data(), converted_.size());
}

bool CheckpointCopier::same_values(const SourceTensor& a, const SourceTensor& b) {
    if (a.file == b.file && a.offset == b.offset && a.type == b.type) return true;
    UninitVector<float> x, y;
    read_f32(a, x);
    read_f32(b, y);
    return std::equal(x.begin(), x.end(), y.begin(), y.end());
}

void CheckpointCopier::read_f32(const SourceTensor& t, UninitVector<float>& out) {
    const uint64_t n = uint64_t(t.rows) * uint64_t(t.cols);
    out.resize(n);
    if (t.file < 0) {
        std::fill(out.begin(), out.end(), 0.0f);
        return;
    }
    float* dst = out.data();
    if (t.transposed) {
        stored_.resize(n);
        dst = stored_.data();
    }
    if (t.type == SourceType::F32) {
        pread_all(t, dst, n * 4);
    } else {
        half_.resize(n);
        pread_all(t, half_.data(), n * 2);
        if (t.type == SourceType::F16) convert_row_f16_to_f32(half_.data(), dst, int64_t(n));
        else for (uint64_t i = 0; i < n; ++i) dst[i] = bf16_to_f32(half_[i]);
    }
    check_finite(t, dst, n);
    if (t.transposed) transpose_f32(stored_.data(), out.data(), t.cols, t.rows);
}

void CheckpointCopier::copy_f32(const SourceTensor& t, OutputFile& out) {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        if (!checker_.joinable()) checker_ = std::thread([this] { check_queued(); });
        queue_.push_back(t);
    }
    queued_.notify_one();
    out.copy_from(fds_[size_t(t.file)], t.offset, t.bytes(), paths_[size_t(t.file)]);
}

void CheckpointCopier::finish() {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        done_ = true;
    }
    queued_.notify_one();
    if (checker_.joinable()) checker_.join();
    if (!check_error_.empty()) throw std::runtime_error(check_error_);
}

void CheckpointCopier::check_queued() {
    UninitVector<float> chunk(kChunkFloats);
    for (;;) {
        SourceTensor t;
        {
            std::unique_lock<std::mutex> lock(mutex_);
            queued_.wait(lock, [this] { return done_ || !queue_.empty(); });
            if (queue_.empty()) return;
            t = queue_.front();
            queue_.pop_front();
        }
        try {
            const uint64_t total = t.bytes();
            for (uint64_t done = 0; done < total;) {
                const uint64_t n = std::min<uint64_t>(total - done, kChunkFloats * 4);
                pread_all(t, chunk.data(), n, done);
                check_finite(t, chunk.data(), n / 4);
                done += n;
            }
        } catch (const std::exception& e) {
            std::lock_guard<std::mutex> lock(mutex_);
            if (check_error_.empty()) check_error_ = e.what();
            queue_.clear();
        }
    }
}

void CheckpointCopier::pread_all(const SourceTensor& t, void* dst, uint64_t n, uint64_t skip) {
    auto* p = static_cast<char*>(dst);
    for (uint64_t got = 0; got < n;) {
        const ssize_t r = ::pread(fds_[size_t(t.file)], p + got, size_t(n - got), off_t(t.offset + skip + got));
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) throw std::runtime_error(paths_[size_t(t.file)] + ": cannot read: " + std::strerror(errno));
        if (r == 0) throw std::runtime_error(paths_[size_t(t.file)] + ": the file ends inside a tensor");
        got += uint64_t(r);
    }
}

void CheckpointCopier::check_finite(const SourceTensor& t, const float* x, uint64_t n) const {
    // |x|'s bits reach an all-ones exponent only for NaN and infinity; a max over the
    // bits vectorizes where a per-element test does not.
    uint32_t largest = 0;
    const auto* bits = reinterpret_cast<const uint32_t*>(x);
    for (uint64_t i = 0; i < n; ++i) largest = std::max(largest, bits[i] & 0x7fffffffu);
    if (largest >= 0x7f800000u) throw std::runtime_error(paths_[size_t(t.file)] + ": NaN or infinity in a tensor");
}

}  // namespace minigpt
