// Copies a checkpoint's tensors (format/gpt2_checkpoint.h) into a GGUF file as it
// is written, converted to the file's type (f16, or q8_0 rounded as gguf-py rounds):
// the data path of `minigpt convert`'s native converter, on two threads. Every value
// is checked for NaN and infinity, as scripts/convert.py checks them.
//   - A tensor stored as it is laid out in GGUF goes in pieces that both threads
//     take, each read, widened to f32, checked, converted and written while it is in
//     the cache.
//   - A tensor stored transposed (Hugging Face's Conv1D weights, (in, out)) is read
//     and turned whole, by whichever thread comes to it first: the second thread works
//     ahead in file order, and the writing thread converts the tensor it is to write
//     next itself when the second has not taken it yet, or the next untaken one while
//     the second converts that (a Hugging Face GPT-2 124M has 340 MB of 548 to turn;
//     one thread turning them took twice as long as the writes).
#pragma once
#include <condition_variable>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "format/dtype.h"
#include "format/gpt2_checkpoint.h"
#include "util/output_file.h"
#include "util/uninit_vector.h"

namespace minigpt {

// One tensor of the output: where it comes from and the type it is written in.
struct TensorPlan {
    SourceTensor tensor;
    DType type = DType::F32;
    // Written in pieces as it is read (else turned whole first).
    bool streamed() const { return !tensor.transposed; }
    uint64_t bytes() const;  // in the output
};

class CheckpointCopier {
public:
    explicit CheckpointCopier(const std::vector<std::string>& paths);  // opens them; throws naming a path
    ~CheckpointCopier();
    CheckpointCopier(const CheckpointCopier&) = delete;
    CheckpointCopier& operator=(const CheckpointCopier&) = delete;

    // True when the two tensors hold the same values (a tied head stored twice).
    // Before start().
    bool same_values(const SourceTensor& a, const SourceTensor& b);

    // Starts the second thread: it converts the transposed tensors in order, at most
    // kAheadBytes ahead of write(), and takes pieces of the tensor being written.
    void start(std::vector<TensorPlan> plan);
    // Appends plan tensor i (called for i = 0, 1, ... in order) to `out`; throws if
    // a tensor so far held NaN or infinity or could not be read.
    void write(size_t i, OutputFile& out);
    // Waits for the last checks; throws as write().
    void finish();

private:
    // Converted bytes waiting to be written, at most (the buffers are reused, so the
    // memory they take is faulted in once).
    static constexpr uint64_t kAheadBytes = uint64_t(64) << 20;
    enum class State : uint8_t { kWaiting, kTaken, kDone };
    // Each thread's working memory (pages faulted in once, reused tensor after tensor).
    struct Scratch {
        UninitVector<float> values, stored;
        UninitVector<uint16_t> half;
        UninitVector<uint8_t> piece;
    };
    std::vector<std::string> paths_;
    std::vector<int> fds_;
    std::vector<TensorPlan> plan_;
    // Between the two threads: each tensor's state, converted tensors waiting to be
    // written, spent buffers to reuse, the first error.
    std::mutex mutex_;
    std::condition_variable changed_;
    std::vector<State> state_;
    std::map<size_t, UninitVector<uint8_t>> ready_;
    uint64_t ready_bytes_ = 0;
    std::vector<UninitVector<uint8_t>> spare_;
    size_t next_ = 0;  // where the worker looks for a tensor to take
    size_t done_ = 0;  // tensors checked (and converted)
    bool stop_ = false;
    std::string error_;
    Scratch writer_scratch_;
    std::thread worker_;

    // The streamed tensor being written: both threads take its pieces. A unit is what
    // converts on its own: one value, or a q8_0 block of 32.
    struct Stream {
        const TensorPlan* plan = nullptr;
        OutputFile* out = nullptr;
        uint64_t dst = 0;        // its offset in the output (reserved)
        int64_t units = 0;
        int64_t unit_values = 1;
        uint64_t unit_bytes = 4;  // in the output
        int64_t next = 0;         // units handed out as pieces
        int busy = 0;             // pieces being written
    } stream_;
    struct Piece {
        Stream stream;             // what it is part of
        int64_t first = 0, units = 0;
    };
    void work();
    // Takes a spare output buffer (or an empty one); the lock is held.
    UninitVector<uint8_t> take_spare();
    // Writes streamed tensor i; the writer takes pieces until none is left, then waits
    // for the worker's.
    void stream(size_t i, OutputFile& out, std::unique_lock<std::mutex>& lock);
    bool take_piece(Piece& piece);  // the lock is held
    void write_piece(const Piece& piece, Scratch& s);
    void convert(const TensorPlan& p, UninitVector<uint8_t>& bytes, Scratch& s);
    // The tensor's rows * cols values as f32 into `out` (transposed when stored (in, out)).
    void read_f32(const SourceTensor& t, float* out, UninitVector<float>& stored, UninitVector<uint16_t>& half);
    void pread_all(const SourceTensor& t, void* dst, uint64_t n, uint64_t skip = 0);
    void check_finite(const SourceTensor& t, const float* x, uint64_t n) const;
};

// (rows, cols) row-major `in` -> (cols, rows) `out`.
void transpose_f32(const float* in, float* out, int64_t rows, int64_t cols);

}  // namespace minigpt
