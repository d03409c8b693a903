// Copies a checkpoint's tensors (format/gpt2_checkpoint.h) into a GGUF file as it
// is written, converted to the file's type (f16, or q8_0 rounded as gguf-py rounds):
// the data path of `minigpt convert`'s native converter, on two threads. Every value
// is checked for NaN and infinity, as scripts/convert.py checks them. Each tensor's
// place in the file is reserved when the file reaches it, and whichever thread
// converts its bytes writes them there (pwrite):
//   - a tensor stored as GGUF lays it out goes in pieces that both threads take, each
//     read, widened to f32, checked, converted and written while it is in the cache;
//   - a tensor stored transposed (Hugging Face's Conv1D weights, (in, out)) is read
//     and turned whole by one thread, the two taking them in file order (a Hugging
//     Face GPT-2 124M has 340 MB of 548 to turn).
#pragma once
#include <condition_variable>
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

    // Starts the second thread, which takes pieces and tensors as they are placed.
    void start(std::vector<TensorPlan> plan);
    // Places plan tensor i (called for i = 0, 1, ... in order) in `out`: a streamed
    // tensor is written before this returns, a transposed one is only placed. Throws
    // if a tensor so far held NaN or infinity or could not be read or written.
    void write(size_t i, OutputFile& out);
    // Converts and writes, beside the worker, the transposed tensors it has not taken,
    // and waits for the rest; throws as write().
    void finish();

private:
    enum class State : uint8_t { kWaiting, kPlaced, kTaken, kDone };
    // Each thread's working memory (pages faulted in once, reused tensor after tensor).
    struct Scratch {
        UninitVector<float> values, stored;
        UninitVector<uint16_t> half;
        UninitVector<uint8_t> bytes;
        // Allocated at once for the largest tensor of the plan (see the .cpp).
        void reserve_for(const std::vector<TensorPlan>& plan);
    };
    // The streamed tensor being written: both threads take its pieces, in units that
    // convert on their own (one value, or a q8_0 block of 32).
    struct Stream {
        const TensorPlan* plan = nullptr;
        uint64_t dst = 0;    // its offset in the output (reserved)
        int64_t units = 0;
        int64_t next = 0;    // units handed out as pieces
    };
    struct Piece {
        Stream stream;  // what it is part of
        int64_t first = 0, units = 0;
    };

    std::vector<std::string> paths_;
    std::vector<int> fds_;
    std::vector<TensorPlan> plan_;
    // The output, through a descriptor of its own: a write in flight on the worker
    // stays harmless if the file is abandoned (an error unwinds the OutputFile).
    int out_fd_ = -1;
    std::string out_path_;
    // Between the two threads: each tensor's state and place, the streamed tensor being
    // written, pieces in flight, the first error.
    std::mutex mutex_;
    std::condition_variable changed_;
    std::vector<State> state_;
    std::vector<uint64_t> offset_;
    Stream stream_;
    int pieces_busy_ = 0;
    size_t done_ = 0;  // tensors written
    bool stop_ = false;
    std::string error_;
    Scratch writer_scratch_;
    std::thread worker_;

    void work();
    void stream(size_t i, OutputFile& out, std::unique_lock<std::mutex>& lock);
    bool take_piece(Piece& piece);  // the lock is held
    void write_piece(const Piece& piece, Scratch& s);
    bool take_placed(size_t& i);    // the first placed transposed tensor; the lock is held
    void write_transposed(size_t i, Scratch& s);
    // t's values, checked, as `type` in `bytes` (transposed when stored (in, out)).
    void convert(const SourceTensor& t, DType type, UninitVector<uint8_t>& bytes, Scratch& s);
    // The tensor's rows * cols values as f32 into `out` (transposed when stored (in, out)).
    void read_f32(const SourceTensor& t, float* out, UninitVector<float>& stored, UninitVector<uint16_t>& half);
    void pread_all(const SourceTensor& t, void* dst, uint64_t n, uint64_t skip = 0);
    void check_finite(const SourceTensor& t, const float* x, uint64_t n) const;
};

// (rows, cols) row-major `in` -> (cols, rows) `out`.
void transpose_f32(const float* in, float* out, int64_t rows, int64_t cols);

}  // namespace minigpt
