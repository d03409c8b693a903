// A native reader of torch.save's zip archives (nanoGPT's ckpt.pt, Hugging Face's
// pytorch_model.bin), with the semantics of scripts/torch_pickle.py:
//   PREFIX/data.pkl   a pickle (protocol 2) of the saved object; every tensor is
//                     torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)
//                     whose storage is the persistent id ("storage", torch.FloatStorage,
//                     KEY, location, numel)
//   PREFIX/data/KEY   the storage's raw little-endian bytes, stored (not compressed)
//   PREFIX/byteorder  "little" when present (older files have none)
// The pickle runs on a restricted VM that allows exactly torch_pickle.py's globals:
// collections.OrderedDict, torch._utils._rebuild_tensor_v2 / _rebuild_parameter,
// torch.*Storage (dtype markers), numpy scalars (numpy.core.multiarray.scalar,
// numpy._core.multiarray.scalar, numpy.dtype of a number type, _codecs.encode(s, "latin1")).
// Anything else is refused ("refusing to load global 'MODULE.NAME'") and no code runs.
// Storages are never read: a tensor says where its bytes are in the file
// (data_offset), every extent checked against the archive. Every read is bounds-checked
// and the VM's stack, marks, memo and result are bounded, so `load` may be given any
// bytes (it is fuzzed); it throws std::runtime_error naming the file and the problem.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace minigpt {

struct TorchTensor {
    std::string dtype;                    // torch's name: "float32", "float16", "bfloat16", "float64",
                                          // "int64", "int32", "int16", "int8", "uint8", "bool"
    std::vector<int64_t> shape, stride;   // in elements, each >= 0
    int64_t storage_offset = 0;           // in elements
    uint64_t data_offset = 0;             // byte offset in the archive file where the storage's data begins
    uint64_t storage_bytes = 0;           // the storage's size in bytes (numel of its persistent id * element size)
    std::string storage_key;              // KEY of PREFIX/data/KEY: tensors with the same key share data (tied weights)
    size_t element_size() const;
    int64_t numel() const;                // product of shape (fits: checked by load)
    bool contiguous() const;              // row-major contiguous as torch says (size-1 dims' strides ignored; empty is)
};

struct PickleValue {
    enum class Kind { None, Bool, Int, Float, String, Bytes, List, Tuple, Dict, Tensor };
    Kind kind = Kind::None;
    bool b = false;
    int64_t i = 0;
    double f = 0;
    std::string s;                                            // String (UTF-8 as pickled) / Bytes
    std::vector<PickleValue> items;                           // List, Tuple
    std::vector<std::pair<PickleValue, PickleValue>> entries;  // Dict (insertion order; OrderedDict too)
    std::shared_ptr<TorchTensor> tensor;                      // Tensor (shared by every reference to it)
    const PickleValue* get(std::string_view key) const;       // Dict lookup by string key, nullptr if absent
};

class TorchArchive {
public:
    // Parses the zip's central directory and PREFIX/data.pkl from bytes the caller keeps
    // alive (the file's contents or a memory map); `name` is the path used in messages.
    // Throws std::runtime_error.
    static PickleValue load(const std::string& name, const uint8_t* data, uint64_t size);
};

}  // namespace minigpt
