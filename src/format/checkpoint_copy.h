// Copies a checkpoint's tensors (format/gpt2_checkpoint.h) into a GGUF file as it
// is written, converted to the file's type: the data path of `minigpt convert`'s
// native converter. Unchanged f32 tensors are copied by the kernel (as cp copies)
// while a second thread reads them too and checks every value; the others are read
// a tensor at a time, widened to f32, checked, transposed where the checkpoint
// stores them (in, out), and converted (f16, or q8_0 rounded as gguf-py rounds).
// Every tensor is checked for NaN and infinity, as scripts/convert.py checks them.
#pragma once
#include <condition_variable>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "format/dtype.h"
#include "format/gpt2_checkpoint.h"
#include "util/output_file.h"
#include "util/uninit_vector.h"

namespace minigpt {

class CheckpointCopier {
public:
    explicit CheckpointCopier(const std::vector<std::string>& paths);  // opens them; throws naming a path
    ~CheckpointCopier();
    CheckpointCopier(const CheckpointCopier&) = delete;
    CheckpointCopier& operator=(const CheckpointCopier&) = delete;

    // Appends tensor t, converted to `type`, to `out`; throws on NaN or infinity
    // (for kernel-copied tensors, finish() reports it).
    void write(const SourceTensor& t, DType type, OutputFile& out);
    // Waits for the checks of kernel-copied tensors; throws if one held NaN or infinity.
    void finish();
    // True when the two tensors hold the same values (a tied head stored twice).
    bool same_values(const SourceTensor& a, const SourceTensor& b);

private:
    std::vector<std::string> paths_;
    std::vector<int> fds_;
    UninitVector<float> values_, stored_;  // a tensor as f32; as stored before a transpose
    UninitVector<uint16_t> half_;          // f16 / bf16 as read
    UninitVector<uint8_t> converted_;      // the output type's bytes
    // The checker thread and its queue of kernel-copied tensors.
    std::mutex mutex_;
    std::condition_variable queued_;
    std::deque<SourceTensor> queue_;
    bool done_ = false;
    std::thread checker_;
    std::string check_error_;

    void read_f32(const SourceTensor& t, UninitVector<float>& out);
    void copy_f32(const SourceTensor& t, OutputFile& out);
    void check_queued();
    void pread_all(const SourceTensor& t, void* dst, uint64_t n, uint64_t skip = 0);
    void check_finite(const SourceTensor& t, const float* x, uint64_t n) const;
};

// (rows, cols) row-major `in` -> (cols, rows) `out`.
void transpose_f32(const float* in, float* out, int64_t rows, int64_t cols);

}  // namespace minigpt
