#include "format/gguf_writer.h"

#include <cstring>
#include <stdexcept>

#include "util/output_file.h"

namespace minigpt {

namespace {

template <typename T>
void append(std::string& s, T v) {
    s.append(reinterpret_cast<const char*>(&v), sizeof v);
}
void append_str(std::string& s, const std::string_view v) {
    append<uint64_t>(s, v.size());
    s.append(v.data(), v.size());
}
size_t elem_size(GGUFType t) {
    switch (t) {
        case GGUFType::U8: case GGUFType::I8: case GGUFType::BOOL: return 1;
        case GGUFType::U16: case GGUFType::I16: return 2;
        case GGUFType::U32: case GGUFType::I32: case GGUFType::F32: return 4;
        default: return 8;
    }
}

// Serializes a value without its leading type tag.
void append_value(std::string& s, const GGUFValue& v) {
    switch (v.type) {
        case GGUFType::U8: append<uint8_t>(s, uint8_t(v.u64)); break;
        case GGUFType::I8: append<int8_t>(s, int8_t(v.i64)); break;
        case GGUFType::U16: append<uint16_t>(s, uint16_t(v.u64)); break;
        case GGUFType::I16: append<int16_t>(s, int16_t(v.i64)); break;
        case GGUFType::U32: append<uint32_t>(s, uint32_t(v.u64)); break;
        case GGUFType::I32: append<int32_t>(s, int32_t(v.i64)); break;
        case GGUFType::U64: append<uint64_t>(s, v.u64); break;
        case GGUFType::I64: append<int64_t>(s, v.i64); break;
        case GGUFType::F32: append<float>(s, float(v.f64)); break;
        case GGUFType::F64: append<double>(s, v.f64); break;
        case GGUFType::BOOL: append<uint8_t>(s, uint8_t(v.u64 != 0)); break;
        case GGUFType::STRING: append_str(s, v.str); break;
        case GGUFType::ARRAY:
            append<uint32_t>(s, uint32_t(v.elem_type));
            append<uint64_t>(s, v.count);
            if (v.elem_type == GGUFType::STRING) {
                for (std::string_view x : v.strings) append_str(s, x);
            } else if (v.elem_type == GGUFType::ARRAY) {
                for (const GGUFValue& x : v.items) append_value(s, x);
            } else {
                s.append(reinterpret_cast<const char*>(v.raw), v.count * elem_size(v.elem_type));
            }
            break;
    }
}

std::string tagged(GGUFType t) {
    std::string s;
    append<uint32_t>(s, uint32_t(t));
    return s;
}

// A tagged array of fixed-size elements: element type, count, then the values'
// bytes as they lie in memory (GGUF is little-endian, like the hosts we build for).
std::string fixed_array(GGUFType elem, uint64_t count, const void* data, size_t bytes) {
    std::string s = tagged(GGUFType::ARRAY);
    append<uint32_t>(s, uint32_t(elem));
    append<uint64_t>(s, count);
    s.append(static_cast<const char*>(data), bytes);
    return s;
}

}  // namespace

void GGUFWriter::put(const std::string& key, std::string serialized) {
    for (auto& kv : kv_)
        if (kv.first == key) {
            kv.second = std::move(serialized);
            return;
        }
    kv_.emplace_back(key, std::move(serialized));
}

void GGUFWriter::set_u32(const std::string& k, uint32_t v) { auto s = tagged(GGUFType::U32); append(s, v); put(k, s); }
void GGUFWriter::set_i32(const std::string& k, int32_t v) { auto s = tagged(GGUFType::I32); append(s, v); put(k, s); }
void GGUFWriter::set_u64(const std::string& k, uint64_t v) { auto s = tagged(GGUFType::U64); append(s, v); put(k, s); }
void GGUFWriter::set_f32(const std::string& k, float v) { auto s = tagged(GGUFType::F32); append(s, v); put(k, s); }
void GGUFWriter::set_bool(const std::string& k, bool v) { auto s = tagged(GGUFType::BOOL); append<uint8_t>(s, v); put(k, s); }
void GGUFWriter::set_string(const std::string& k, const std::string& v) {
    auto s = tagged(GGUFType::STRING);
    append_str(s, v);
    put(k, s);
}
void GGUFWriter::set_string_array(const std::string& k, const std::vector<std::string>& v) {
    auto s = tagged(GGUFType::ARRAY);
    append<uint32_t>(s, uint32_t(GGUFType::STRING));
    append<uint64_t>(s, v.size());
    for (const std::string& x : v) append_str(s, x);
    put(k, s);
}
void GGUFWriter::set_f32_array(const std::string& k, const std::vector<float>& v) {
    put(k, fixed_array(GGUFType::F32, v.size(), v.data(), v.size() * sizeof(float)));
}
void GGUFWriter::set_i32_array(const std::string& k, const std::vector<int32_t>& v) {
    put(k, fixed_array(GGUFType::I32, v.size(), v.data(), v.size() * sizeof(int32_t)));
}
void GGUFWriter::set_u8_array(const std::string& k, const std::string& bytes) {
    put(k, fixed_array(GGUFType::U8, bytes.size(), bytes.data(), bytes.size()));
}
void GGUFWriter::set_value(const std::string& k, const GGUFValue& v) {
    auto s = tagged(v.type);
    append_value(s, v);
    put(k, s);
}

void GGUFWriter::add_tensor(const std::string& name, DType type, const std::vector<int64_t>& ne, const void* data) {
    if (ne.empty() || ne.size() > 4) throw std::runtime_error("tensor " + name + ": 1 to 4 dimensions");
    uint64_t rows = 1;
    for (size_t i = 1; i < ne.size(); ++i) rows *= uint64_t(ne[i]);
    tensors_.push_back(Tensor{name, type, ne, data, uint64_t(dtype_row_bytes(type, ne[0])) * rows, nullptr});
}

void GGUFWriter::add_tensor(const std::string& name, DType type, const std::vector<int64_t>& ne,
                            TensorData write_data) {
    add_tensor(name, type, ne, static_cast<const void*>(nullptr));
    tensors_.back().write_data = std::move(write_data);
}

void GGUFWriter::write(const std::string& path, uint64_t alignment, const std::function<void()>& before_commit) const {
    std::string head;
    append<uint32_t>(head, 0x46554747);  // "GGUF"
    append<uint32_t>(head, 3);
    append<uint64_t>(head, tensors_.size());
    const bool store_alignment = alignment != 32;
    append<uint64_t>(head, kv_.size() + (store_alignment ? 1 : 0));
    if (store_alignment) {
        append_str(head, "general.alignment");
        append<uint32_t>(head, uint32_t(GGUFType::U32));
        append<uint32_t>(head, uint32_t(alignment));
    }
    for (const auto& [key, value] : kv_) {
        if (key == "general.alignment") throw std::runtime_error("set the alignment through write()");
        append_str(head, key);
        head += value;
    }
    uint64_t offset = 0;
    std::vector<uint64_t> offsets;
    for (const Tensor& t : tensors_) {
        append_str(head, t.name);
        append<uint32_t>(head, uint32_t(t.ne.size()));
        for (int64_t n : t.ne) append<uint64_t>(head, uint64_t(n));
        append<uint32_t>(head, uint32_t(t.type));
        append<uint64_t>(head, offset);
        offsets.push_back(offset);
        offset = (offset + t.nbytes + alignment - 1) / alignment * alignment;
    }
    head.append((alignment - head.size() % alignment) % alignment, '\0');
    OutputFile out(path);
    out.write(head);
    const std::string zeros(size_t(alignment), '\0');
    for (size_t i = 0; i < tensors_.size(); ++i) {
        const Tensor& t = tensors_[i];
        if (t.write_data) {
            const uint64_t before = out.position();
            t.write_data(out);
            if (out.position() - before != t.nbytes)
                throw std::runtime_error("tensor " + t.name + ": " + std::to_string(out.position() - before) +
                                         " bytes written, " + std::to_string(t.nbytes) + " expected");
        } else {
            out.write(t.data, t.nbytes);
        }
        const uint64_t pad = (alignment - tensors_[i].nbytes % alignment) % alignment;
        out.write(zeros.data(), size_t(pad));  // after the last one too, as gguf-py and ggml do
    }
    if (before_commit) before_commit();
    out.commit();
}

}  // namespace minigpt
