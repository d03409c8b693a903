#include "format/checkpoint_copy.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>

#include <fcntl.h>
#include <immintrin.h>
#include <unistd.h>

#include "format/f16.h"
#include "format/quantize.h"

namespace minigpt {

namespace {

// Tensors go to the file in pieces of about 64 KiB, ending on 64 KiB boundaries of
// the file where the type's size allows (f32, f16). The piece size
// decides the page-cache folios the writes allocate, and on this project's VM larger
// folios are slow to come by (free memory the hypervisor reclaimed comes back page
// fault by page fault): converting llm.c's GPT-2 124M, medians of 11 (cp = 1): the
// kernel's copy (copy_file_range, as cp copies, with a second read for the checks)
// 2.0x, 64 KiB pieces 1.5x, 128 KiB 1.65x, 256 KiB 0.16-1.3 s from run to run.
constexpr uint64_t kPieceBytes = uint64_t(64) << 10;

// A buffer of n elements whose old contents may go: growing it then allocates
// without copying them over.
template <typename T>
void resize_unkept(UninitVector<T>& v, size_t n) {
    if (n > v.capacity()) v.clear();
    v.resize(n);
}

// What converts on its own: one value, or a q8_0 block of 32; and its bytes in the output.
int64_t unit_values(const TensorPlan& p) { return p.type == DType::Q8_0 ? kQ8_0Block : 1; }
uint64_t unit_bytes(const TensorPlan& p) { return uint64_t(dtype_row_bytes(p.type, unit_values(p))); }

}  // namespace

// The 8x8 block at (r0, c0) of a (rows, cols) matrix, transposed in registers
// (AVX2: unpack, shuffle, swap 128-bit lanes).
#if defined(__AVX2__)
static void transpose_block8(const float* in, float* out, int64_t rows, int64_t cols, int64_t r0, int64_t c0) {
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
#endif

void transpose_f32(const float* in, float* out, int64_t rows, int64_t cols) {
    // Tiles of 8x8 register blocks; the ragged edges element by element. A plain loop
    // moves ~1 GB/s, and a GPT-2 124M has 340 MB of Conv1D weights to turn.
    // 32x32 tiles, row of tiles after row of tiles, unless the output's rows lie a
    // multiple of 4 KiB apart and the input's do not: the output rows being written then
    // share their L1 (and L2) sets and evict each other, so the tiles are 32 input rows
    // by 8 output rows, and go down the input: 8 output rows written from start to end
    // at a time. GPT-2's MLP projection (3072 x 768 stored): 3.8 -> 20 GB/s, warm, in
    // transparent huge pages; the other shapes stay at 14-32 GB/s.
    const auto aliased = [](int64_t row_floats) { return (row_floats * 4) % 4096 == 0; };
    const bool along_output = aliased(rows) && !aliased(cols);
    const int64_t tile_r = 32, tile_c = along_output ? 8 : 32;
    const int64_t row_tiles = (rows + tile_r - 1) / tile_r, col_tiles = (cols + tile_c - 1) / tile_c;
    for (int64_t t = 0; t < row_tiles * col_tiles; ++t) {
        const int64_t rt = (along_output ? t % row_tiles : t / col_tiles) * tile_r;
        const int64_t ct = (along_output ? t / row_tiles : t % col_tiles) * tile_c;
        const int64_t r_end = std::min(rows, rt + tile_r), c_end = std::min(cols, ct + tile_c);
        int64_t r8_end = rt, c8_end = ct;
#if defined(__AVX2__)
        r8_end = rt + (r_end - rt) / 8 * 8;
        c8_end = ct + (c_end - ct) / 8 * 8;
        for (int64_t r0 = rt; r0 < r8_end; r0 += 8)
            for (int64_t c0 = ct; c0 < c8_end; c0 += 8) transpose_block8(in, out, rows, cols, r0, c0);
#endif
        // What the blocks left: the columns past c8_end, then the rows past r8_end.
        for (int64_t r = rt; r < r8_end; ++r)
            for (int64_t c = c8_end; c < c_end; ++c) out[c * rows + r] = in[r * cols + c];
        for (int64_t r = r8_end; r < r_end; ++r)
            for (int64_t c = ct; c < c_end; ++c) out[c * rows + r] = in[r * cols + c];
    }
}

void CheckpointCopier::Scratch::reserve_for(const std::vector<TensorPlan>& plan) {
    // Grown tensor by tensor instead, a buffer was freed and mapped again for each
    // larger tensor, and the worker's buffers (below 8 MiB, from its own malloc arena,
    // which has no huge-page advice) came back 4 KiB page by page: ~4 500 page faults
    // in a Hugging Face GPT-2 124M's conversion, at ~11.6 us each on this project's VM
    // (util/huge_pages.h). Reserved at once, each buffer of 4 MiB or more gets
    // transparent huge pages (UninitVector) and is faulted in once.
    size_t n = size_t(kPieceBytes);  // a streamed piece's values at most
    bool transposed = false, narrow_source = false, narrow_output = false;
    for (const TensorPlan& p : plan) {
        if (p.tensor.transposed) n = std::max(n, size_t(p.tensor.rows * p.tensor.cols));
        transposed |= p.tensor.transposed;
        narrow_source |= p.tensor.type != SourceType::F32;
        narrow_output |= p.type != DType::F32;
    }
    bytes.reserve(n * sizeof(float));
    if (transposed) stored.reserve(n);
    if (narrow_source) half.reserve(n);
    if (narrow_output) values.reserve(n);
}

uint64_t TensorPlan::bytes() const { return uint64_t(dtype_row_bytes(type, tensor.cols)) * uint64_t(tensor.rows); }

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
    {
        std::lock_guard<std::mutex> lock(mutex_);
        stop_ = true;
    }
    changed_.notify_all();
    if (worker_.joinable()) worker_.join();
    for (int fd : fds_) ::close(fd);
    if (out_fd_ >= 0) ::close(out_fd_);
}

bool CheckpointCopier::same_values(const SourceTensor& a, const SourceTensor& b) {
    if (a.file == b.file && a.offset == b.offset && a.type == b.type) return true;
    UninitVector<float> x(size_t(a.rows * a.cols)), y(size_t(b.rows * b.cols)), stored;
    UninitVector<uint16_t> half;
    read_f32(a, x.data(), stored, half);
    read_f32(b, y.data(), stored, half);
    return std::equal(x.begin(), x.end(), y.begin(), y.end());
}

void CheckpointCopier::start(std::vector<TensorPlan> plan) {
    plan_ = std::move(plan);
    state_.assign(plan_.size(), State::kWaiting);
    offset_.assign(plan_.size(), 0);
    writer_scratch_.reserve_for(plan_);
    worker_ = std::thread([this] { work(); });
}

bool CheckpointCopier::take_piece(Piece& piece) {
    Stream& st = stream_;
    if (!st.plan || st.next == st.units) return false;
    const uint64_t unit = unit_bytes(*st.plan);
    int64_t n = int64_t(kPieceBytes / unit);
    if (kPieceBytes % unit == 0) {  // to the next boundary (GGUF aligns tensors to 32 bytes)
        const uint64_t at = st.dst + uint64_t(st.next) * unit;
        n = int64_t((kPieceBytes - at % kPieceBytes) / unit);
    }
    piece.stream = st;
    piece.first = st.next;
    piece.units = std::min(std::max<int64_t>(n, 1), st.units - st.next);
    st.next += piece.units;
    ++pieces_busy_;
    return true;
}

void CheckpointCopier::write_piece(const Piece& piece, Scratch& s) {
    const TensorPlan& p = *piece.stream.plan;
    SourceTensor part = p.tensor;  // the piece's values as one row
    part.rows = 1;
    part.cols = piece.units * unit_values(p);
    part.offset += uint64_t(piece.first * unit_values(p)) * (part.type == SourceType::F32 ? 4 : 2);
    convert(part, p.type, s.bytes, s);
    pwrite_all(out_fd_, s.bytes.data(), s.bytes.size(), piece.stream.dst + uint64_t(piece.first) * unit_bytes(p),
               out_path_);
}

bool CheckpointCopier::take_placed(size_t& i) {
    for (size_t j = 0; j < plan_.size(); ++j)
        if (state_[j] == State::kPlaced) {
            state_[j] = State::kTaken;
            i = j;
            return true;
        }
    return false;
}

void CheckpointCopier::write_transposed(size_t i, Scratch& s) {
    convert(plan_[i].tensor, plan_[i].type, s.bytes, s);
    // In pieces too (see kPieceBytes): written whole or through OutputFile::write's
    // 2 MiB pieces, a Hugging Face GPT-2 124M took 2.4-2.7x cp's time (0.28-0.88 s)
    // instead of 1.94-1.95x (0.28-0.34 s; medians of 11).
    const uint64_t at = offset_[i], n = s.bytes.size();
    for (uint64_t done = 0; done < n;) {
        const uint64_t k = std::min<uint64_t>(n - done, kPieceBytes - (at + done) % kPieceBytes);
        pwrite_all(out_fd_, s.bytes.data() + done, size_t(k), at + done, out_path_);
        done += k;
    }
}

void CheckpointCopier::write(size_t i, OutputFile& out) {
    const TensorPlan& p = plan_.at(i);
    std::unique_lock<std::mutex> lock(mutex_);
    if (!error_.empty()) throw std::runtime_error(error_);
    if (out_fd_ < 0) {
        out_fd_ = out.duplicate_descriptor();
        out_path_ = out.path();
    }
    if (p.streamed()) return stream(i, out, lock);
    offset_[i] = out.reserve(p.bytes());
    state_[i] = State::kPlaced;
    lock.unlock();
    changed_.notify_all();
}

void CheckpointCopier::stream(size_t i, OutputFile& out, std::unique_lock<std::mutex>& lock) {
    const TensorPlan& p = plan_[i];
    stream_ = Stream{&p, out.reserve(p.bytes()), p.tensor.rows * p.tensor.cols / unit_values(p), 0};
    changed_.notify_all();  // the worker takes pieces too
    std::string failure;
    for (Piece piece; error_.empty() && failure.empty() && take_piece(piece);) {
        lock.unlock();
        try {
            write_piece(piece, writer_scratch_);
        } catch (const std::exception& e) {
            failure = e.what();
        }
        lock.lock();
        --pieces_busy_;
    }
    stream_.next = stream_.units;
    changed_.wait(lock, [&] { return pieces_busy_ == 0; });  // the worker's last pieces
    stream_ = Stream{};
    if (!failure.empty()) throw std::runtime_error(failure);
    if (!error_.empty()) throw std::runtime_error(error_);
    state_[i] = State::kDone;
    ++done_;
}

void CheckpointCopier::finish() {
    std::unique_lock<std::mutex> lock(mutex_);
    for (size_t i = 0; error_.empty() && take_placed(i);) {
        lock.unlock();
        write_transposed(i, writer_scratch_);  // a throw: the worker writes on to its own descriptor
        lock.lock();
        state_[i] = State::kDone;
        ++done_;
    }
    changed_.wait(lock, [&] { return !error_.empty() || done_ == plan_.size(); });
    if (!error_.empty()) throw std::runtime_error(error_);
}

void CheckpointCopier::work() {
    Scratch scratch;
    scratch.reserve_for(plan_);
    std::unique_lock<std::mutex> lock(mutex_);
    for (;;) {
        // Pieces of the tensor being written first (the writer waits for them), then the
        // first transposed tensor placed that nobody has taken.
        Piece piece;
        size_t i = 0;
        bool placed = false;
        changed_.wait(lock, [&] {
            return stop_ || !error_.empty() || take_piece(piece) || (placed = take_placed(i));
        });
        if (piece.units == 0 && !placed) return;  // stopped, or an error
        lock.unlock();
        std::string failure;
        try {
            if (placed) write_transposed(i, scratch);
            else write_piece(piece, scratch);
        } catch (const std::exception& e) {
            failure = e.what();
        }
        lock.lock();
        if (!failure.empty() && error_.empty()) error_ = failure;
        if (placed) {
            state_[i] = State::kDone;
            ++done_;
        } else {
            --pieces_busy_;
        }
        changed_.notify_all();
    }
}

void CheckpointCopier::convert(const SourceTensor& t, DType type, UninitVector<uint8_t>& bytes, Scratch& s) {
    resize_unkept(bytes, size_t(dtype_row_bytes(type, t.cols)) * size_t(t.rows));
    if (type == DType::F32) {  // f32 out: the values land in the output bytes directly
        read_f32(t, reinterpret_cast<float*>(bytes.data()), s.stored, s.half);
        return;
    }
    // Rows lie end to end in the output (q8_0 rows are whole blocks): one row of them all.
    resize_unkept(s.values, size_t(t.rows * t.cols));
    read_f32(t, s.values.data(), s.stored, s.half);
    store_row(s.values.data(), t.rows * t.cols, type, bytes.data(), Q8Rounding::kDivide);
}

void CheckpointCopier::read_f32(const SourceTensor& t, float* out, UninitVector<float>& stored,
                                UninitVector<uint16_t>& half) {
    const uint64_t n = uint64_t(t.rows) * uint64_t(t.cols);
    if (t.file < 0) {
        std::fill(out, out + n, 0.0f);
        return;
    }
    float* dst = out;
    if (t.transposed) {
        resize_unkept(stored, n);
        dst = stored.data();
    }
    if (t.type == SourceType::F32) {
        pread_all(t, dst, n * 4);
    } else {
        resize_unkept(half, n);
        pread_all(t, half.data(), n * 2);
        if (t.type == SourceType::F16) convert_row_f16_to_f32(half.data(), dst, int64_t(n));
        else for (uint64_t i = 0; i < n; ++i) dst[i] = bf16_to_f32(half[i]);
    }
    check_finite(t, dst, n);
    if (t.transposed) transpose_f32(stored.data(), out, t.cols, t.rows);
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
