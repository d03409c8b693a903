// GGUF v3 reader over a memory-mapped file (spec: ggml/docs/gguf.md).
// Metadata is parsed eagerly (strings and numeric arrays stay views into the
// mapping); tensor data is never copied. Every offset and size is checked
// against the file length with overflow-safe arithmetic, and every error names
// the file, the byte offset and what was expected.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "format/dtype.h"
#include "format/mapped_file.h"

namespace minigpt {

enum class GGUFType : uint32_t {
    U8 = 0, I8 = 1, U16 = 2, I16 = 3, U32 = 4, I32 = 5, F32 = 6, BOOL = 7,
    STRING = 8, ARRAY = 9, U64 = 10, I64 = 11, F64 = 12,
};
const char* gguf_type_name(GGUFType t);

struct GGUFValue {
    GGUFType type = GGUFType::U8;
    // Scalars (the one matching `type` is set; integers also fill the other integer field when in range).
    uint64_t u64 = 0;
    int64_t i64 = 0;
    double f64 = 0;
    std::string_view str;                 // STRING
    // ARRAY
    GGUFType elem_type = GGUFType::U8;
    uint64_t count = 0;
    const uint8_t* raw = nullptr;         // numeric elements, little-endian, packed
    std::vector<std::string_view> strings;  // STRING elements
    std::vector<GGUFValue> items;         // ARRAY-of-ARRAY elements

    bool is_integer() const;
};

struct GGUFTensor {
    std::string name;
    DType type = DType::F32;
    int n_dims = 0;
    int64_t ne[4] = {1, 1, 1, 1};   // ne[0] is the innermost (contiguous) dimension, as in ggml
    uint64_t offset = 0;             // relative to the data section
    uint64_t nbytes = 0;
    const uint8_t* data = nullptr;   // view into the mapping
    uint64_t file_offset = 0;        // absolute, for messages

    int64_t elements() const { return ne[0] * ne[1] * ne[2] * ne[3]; }
    std::string shape_string() const;  // "[768, 2304]"
};

class GGUFFile {
public:
    explicit GGUFFile(const std::string& path);  // maps and parses; throws on any problem
    explicit GGUFFile(std::unique_ptr<MappedFile> file);  // parses bytes already mapped (or a memory view)

    const std::string& path() const { return file_->path(); }
    uint32_t version() const { return version_; }
    uint64_t file_size() const { return file_->size(); }
    uint64_t alignment() const { return alignment_; }
    uint64_t data_offset() const { return data_offset_; }
    // Brings these tensors' bytes into the page tables in a background thread, in
    // this order, ahead of the first pass over them (MappedFile::populate_in_background).
    void populate_in_background(const std::vector<const GGUFTensor*>& order) const;
    void stop_populating() const { file_->stop_populating(); }
    const MappedFile& file() const { return *file_; }

    const std::vector<std::pair<std::string, GGUFValue>>& metadata() const { return metadata_; }
    const std::vector<GGUFTensor>& tensors() const { return tensors_; }

    const GGUFValue* find(const std::string& key) const;
    const GGUFTensor* find_tensor(const std::string& name) const;
    const GGUFTensor& tensor(const std::string& name) const;  // throws "missing tensor"

    // Typed getters: throw naming the key when missing or of an unusable type.
    uint64_t get_uint(const std::string& key) const;
    double get_float(const std::string& key) const;
    std::string get_string(const std::string& key) const;
    bool get_bool(const std::string& key) const;
    // With defaults when the key is absent (still throw if present with a wrong type).
    uint64_t get_uint(const std::string& key, uint64_t dflt) const;
    double get_float(const std::string& key, double dflt) const;
    std::string get_string(const std::string& key, const std::string& dflt) const;
    bool get_bool(const std::string& key, bool dflt) const;

    std::vector<std::string> get_string_array(const std::string& key) const;
    std::vector<float> get_float_array(const std::string& key) const;
    std::vector<int32_t> get_int_array(const std::string& key) const;
    std::string get_bytes(const std::string& key) const;  // array of u8/i8 as raw bytes

    // Formats a value for `minigpt inspect` (arrays abbreviated).
    static std::string to_string(const GGUFValue& v, size_t max_items = 8);

private:
    std::unique_ptr<MappedFile> file_;
    uint32_t version_ = 0;
    uint64_t alignment_ = 32;
    uint64_t data_offset_ = 0;
    std::vector<std::pair<std::string, GGUFValue>> metadata_;
    std::map<std::string, size_t, std::less<>> meta_index_;
    std::vector<GGUFTensor> tensors_;
    std::map<std::string, size_t, std::less<>> tensor_index_;

    [[noreturn]] void fail_key(const std::string& key, const std::string& what) const;
};

}  // namespace minigpt
