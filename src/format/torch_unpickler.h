// The restricted pickle VM behind format/torch_archive.h (internal to format/): the
// values it builds (Node), its bounds, and the class. torch_unpickler.cpp holds the
// VM itself (the stream, stack, marks, memo, dicts and every opcode); torch_archive.cpp
// what is torch's (the allowed globals, storages, _rebuild_tensor_v2, numpy scalars)
// and the conversion of the result to PickleValue.
#pragma once
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "format/torch_archive.h"
#include "format/zip_archive.h"

namespace minigpt::torch_pickle {

[[noreturn]] inline void fail(const std::string& name, const std::string& what) {
    throw std::runtime_error(name + ": " + what);
}

// torch.FloatStorage etc.: the element type of a storage.
struct StorageClass {
    const char* cls;    // torch.<cls>
    const char* dtype;  // torch's dtype name
    size_t size;        // bytes per element
};
const StorageClass* storage_class(std::string_view cls);

// The globals torch_pickle.py allows.
enum class Global { OrderedDict, RebuildTensorV2, RebuildParameter, NumpyDtype, NumpyScalar, CodecsEncode };

struct Node {
    enum class K { None, Bool, Int, Float, String, Bytes, List, Tuple, Dict, Tensor, Global, StorageType, Storage, Dtype };
    K k = K::None;
    bool b = false;  // Bool; Dict: an OrderedDict
    int64_t i = 0;   // Int; Global: its Global
    double f = 0;
    std::string s;   // String, Bytes; Global: "module.name"; Storage: its key; Dtype: numpy's name ("f4")
    char byteorder = '<';  // Dtype: '<', '>', '|' or '='
    std::vector<Node*> items;                       // List, Tuple
    std::vector<std::pair<Node*, Node*>> entries;   // Dict
    std::unique_ptr<std::unordered_map<std::string, size_t>> str_keys;  // Dict: index of String keys
    std::unique_ptr<std::unordered_map<int64_t, size_t>> int_keys;      // Dict: of Int/Bool/integral Float keys
    std::shared_ptr<TorchTensor> tensor;            // Tensor
    const StorageClass* storage = nullptr;          // StorageType, Storage
    uint64_t numel = 0, data_offset = 0;            // Storage
};
using K = Node::K;

// The name Python gives the kind, for messages.
const char* kind_name(K k);

// Bounds on what a hostile pickle may make us hold.
constexpr size_t kMaxNodes = size_t(1) << 22;   // values created
constexpr size_t kMaxStack = size_t(1) << 22;   // stack entries
constexpr size_t kMaxMarks = size_t(1) << 16;   // open MARKs
constexpr size_t kMaxMemo = size_t(1) << 22;    // memo entries
constexpr int kMaxDepth = 100;                  // nesting of the result
constexpr int64_t kMaxDims = 64;                // tensor dimensions

class TorchUnpickler {
public:
    TorchUnpickler(const std::string& name, const ZipArchive& zip, const std::string& prefix, const uint8_t* file,
                   uint64_t pkl_off, uint64_t pkl_size)
        : name_(name), zip_(zip), prefix_(prefix), p_(file + pkl_off), n_(pkl_size),
          budget_((uint64_t(64) << 20) + (pkl_size > (UINT64_MAX >> 5) ? UINT64_MAX >> 5 : pkl_size * 16)) {}

    PickleValue run();

private:
    // ---- the VM (torch_unpickler.cpp) ----
    [[noreturn]] void bad(const std::string& what) const;

    // reading the stream
    const uint8_t* take(uint64_t len);
    uint64_t u8();
    uint64_t u16();
    uint64_t u32();
    uint64_t u64();
    std::string line();

    // values, stack, marks, memo
    Node* make(K k);
    Node* make_int(int64_t v);
    Node* read_string(K k, uint64_t len);  // the next len bytes of the stream
    size_t fence() const;
    void push(Node* x);
    Node* pop();
    Node* top() const;
    std::vector<Node*> pop_mark();
    void memo_put(uint64_t idx, Node* x);
    Node* memo_get(uint64_t idx) const;
    // Python's dict[key] = value: a key equal to an existing one replaces its value.
    void dict_set(Node* d, Node* key, Node* value);
    Node* dict_top(const char* op);

    // integers
    Node* long_bytes(uint64_t len);
    // every opcode, until STOP
    Node* execute();

    // ---- what is torch's (torch_archive.cpp) ----
    Node* find_class(const std::string& module, const std::string& cls);
    // BUILD: obj.__setstate__(state) or obj.__dict__.update(state), for what has them.
    void build();
    Node* call(Node* fn, Node* args);
    Node* numpy_scalar(const Node* dtype, std::string bytes);
    Node* persistent_load(Node* pid);
    // _rebuild_tensor_v2(storage, storage_offset, size, stride, ...) with every index checked.
    Node* rebuild_tensor(Node* storage, Node* offset, Node* size, Node* stride);
    // the result: the graph as a tree of PickleValue, bounded in depth and size
    PickleValue convert(const Node* x, int depth);

    const std::string& name_;
    const ZipArchive& zip_;
    const std::string& prefix_;
    const uint8_t* p_;
    uint64_t n_, pos_ = 0, op_pos_ = 0;
    uint64_t budget_;
    std::vector<std::unique_ptr<Node>> arena_;
    std::vector<Node*> stack_;
    std::vector<size_t> marks_;
    std::unordered_map<uint64_t, Node*> memo_;
    std::unordered_map<std::string, Node*> storages_;
};

}  // namespace minigpt::torch_pickle
