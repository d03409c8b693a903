// Writes GGUF v3 files (metadata + tensors), all-or-nothing through OutputFile.
// Used by `minigpt quantize` and by the tests that build model files.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "format/dtype.h"
#include "format/gguf.h"
#include "util/output_file.h"

namespace minigpt {

class GGUFWriter {
public:
    void set_u32(const std::string& key, uint32_t v);
    void set_i32(const std::string& key, int32_t v);
    void set_u64(const std::string& key, uint64_t v);
    void set_f32(const std::string& key, float v);
    void set_bool(const std::string& key, bool v);
    void set_string(const std::string& key, const std::string& v);
    void set_string_array(const std::string& key, const std::vector<std::string>& v);
    void set_f32_array(const std::string& key, const std::vector<float>& v);
    void set_i32_array(const std::string& key, const std::vector<int32_t>& v);
    void set_u8_array(const std::string& key, const std::string& bytes);
    // Copies a value read from another file (any type, arrays included).
    void set_value(const std::string& key, const GGUFValue& v);

    // `data` (nbytes bytes) must stay valid until write(). ne[0] is the row length.
    void add_tensor(const std::string& name, DType type, const std::vector<int64_t>& ne, const void* data);

    // A tensor whose bytes are made while the file is written: `write_data` appends
    // exactly the tensor's size to the file (checked), so a converter streams one
    // tensor at a time instead of holding them all.
    using TensorData = std::function<void(OutputFile&)>;
    void add_tensor(const std::string& name, DType type, const std::vector<int64_t>& ne, TensorData write_data);

    // Writes the file; `alignment` is also stored as general.alignment when not 32.
    // `before_commit` runs once every byte is written, before the file takes its
    // name; a throw there leaves no file (the converter's last checks).
    void write(const std::string& path, uint64_t alignment = 32, const std::function<void()>& before_commit = {}) const;

private:
    struct Tensor {
        std::string name;
        DType type;
        std::vector<int64_t> ne;
        const void* data;
        uint64_t nbytes;
        TensorData write_data;  // used when data is null
    };
    std::vector<std::pair<std::string, std::string>> kv_;  // key -> serialized (type + value)
    std::vector<Tensor> tensors_;
    void put(const std::string& key, std::string serialized);
};

}  // namespace minigpt
