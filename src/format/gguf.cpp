#include "format/gguf.h"

#include <algorithm>
#include <cstring>
#include <sstream>
#include <stdexcept>

#include "format/checkpoint_kind.h"

namespace minigpt {

namespace {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" read as little-endian u32
constexpr uint32_t kMaxDims = 4;
// Metadata strings longer than this are refused: no real key or token is near it,
// and a corrupt length must not make us walk gigabytes.
constexpr uint64_t kMaxString = uint64_t(1) << 30;

size_t scalar_size(GGUFType t) {
    switch (t) {
        case GGUFType::U8: case GGUFType::I8: case GGUFType::BOOL: return 1;
        case GGUFType::U16: case GGUFType::I16: return 2;
        case GGUFType::U32: case GGUFType::I32: case GGUFType::F32: return 4;
        case GGUFType::U64: case GGUFType::I64: case GGUFType::F64: return 8;
        default: return 0;
    }
}

bool valid_type(uint32_t t) { return t <= uint32_t(GGUFType::F64); }

// Bounds-checked little-endian cursor over the mapping.
class Cursor {
public:
    Cursor(const uint8_t* base, uint64_t size, const std::string& path) : base_(base), size_(size), path_(path) {}

    uint64_t pos() const { return pos_; }
    uint64_t remaining() const { return size_ - pos_; }

    [[noreturn]] void fail(const std::string& what, uint64_t at) const {
        std::ostringstream os;
        os << path_ << ": offset " << at << ": " << what;
        throw std::runtime_error(os.str());
    }
    [[noreturn]] void fail(const std::string& what) const { fail(what, pos_); }

    void need(uint64_t n, const char* what) const {
        if (n > remaining())
            fail(std::string("file truncated while reading ") + what + " (need " + std::to_string(n) +
                 " bytes, " + std::to_string(remaining()) + " left)");
    }
    template <typename T>
    T read(const char* what) {
        need(sizeof(T), what);
        T v;
        std::memcpy(&v, base_ + pos_, sizeof(T));
        pos_ += sizeof(T);
        return v;
    }
    std::string_view read_string(const char* what) {
        const uint64_t at = pos_;
        uint64_t len = read<uint64_t>(what);
        if (len > kMaxString) fail(std::string(what) + ": string length " + std::to_string(len) + " is absurd", at);
        need(len, what);
        std::string_view s(reinterpret_cast<const char*>(base_ + pos_), len);
        pos_ += len;
        return s;
    }
    const uint8_t* take(uint64_t n, const char* what) {
        need(n, what);
        const uint8_t* p = base_ + pos_;
        pos_ += n;
        return p;
    }

private:
    const uint8_t* base_;
    uint64_t size_;
    uint64_t pos_ = 0;
    const std::string& path_;
};

GGUFValue read_value(Cursor& c, GGUFType type, int depth);

void read_scalar(Cursor& c, GGUFType type, GGUFValue& v) {
    switch (type) {
        case GGUFType::U8: v.u64 = c.read<uint8_t>("u8"); v.i64 = int64_t(v.u64); break;
        case GGUFType::I8: v.i64 = c.read<int8_t>("i8"); v.u64 = uint64_t(v.i64); break;
        case GGUFType::U16: v.u64 = c.read<uint16_t>("u16"); v.i64 = int64_t(v.u64); break;
        case GGUFType::I16: v.i64 = c.read<int16_t>("i16"); v.u64 = uint64_t(v.i64); break;
        case GGUFType::U32: v.u64 = c.read<uint32_t>("u32"); v.i64 = int64_t(v.u64); break;
        case GGUFType::I32: v.i64 = c.read<int32_t>("i32"); v.u64 = uint64_t(v.i64); break;
        case GGUFType::U64: v.u64 = c.read<uint64_t>("u64"); v.i64 = int64_t(v.u64); break;
        case GGUFType::I64: v.i64 = c.read<int64_t>("i64"); v.u64 = uint64_t(v.i64); break;
        case GGUFType::F32: v.f64 = c.read<float>("f32"); break;
        case GGUFType::F64: v.f64 = c.read<double>("f64"); break;
        case GGUFType::BOOL: {
            const uint64_t at = c.pos();
            uint8_t b = c.read<uint8_t>("bool");
            if (b > 1) c.fail("bool value " + std::to_string(b) + " is neither 0 nor 1", at);
            v.u64 = b;
            v.i64 = b;
            break;
        }
        default: break;
    }
}

GGUFValue read_value(Cursor& c, GGUFType type, int depth) {
    GGUFValue v;
    v.type = type;
    if (type == GGUFType::STRING) {
        v.str = c.read_string("string value");
    } else if (type == GGUFType::ARRAY) {
        const uint64_t at = c.pos();
        uint32_t et = c.read<uint32_t>("array element type");
        if (!valid_type(et)) c.fail("unknown array element type " + std::to_string(et), at);
        v.elem_type = GGUFType(et);
        const uint64_t count_at = c.pos();
        v.count = c.read<uint64_t>("array length");
        if (v.elem_type == GGUFType::STRING) {
            // Each string needs at least its 8-byte length: refuse absurd counts before allocating.
            if (v.count > c.remaining() / 8)
                c.fail("array of " + std::to_string(v.count) + " strings cannot fit in the " +
                       std::to_string(c.remaining()) + " bytes left", count_at);
            v.strings.reserve(v.count);
            for (uint64_t i = 0; i < v.count; ++i) v.strings.push_back(c.read_string("array string"));
        } else if (v.elem_type == GGUFType::ARRAY) {
            if (depth >= 2) c.fail("arrays nested deeper than 2 levels are not supported", at);
            if (v.count > c.remaining() / 12)
                c.fail("array of " + std::to_string(v.count) + " arrays cannot fit in the file", count_at);
            v.items.reserve(v.count);
            for (uint64_t i = 0; i < v.count; ++i) v.items.push_back(read_value(c, GGUFType::ARRAY, depth + 1));
        } else {
            const uint64_t sz = scalar_size(v.elem_type);
            if (v.count > c.remaining() / sz)
                c.fail("array of " + std::to_string(v.count) + " " + gguf_type_name(v.elem_type) +
                       " values runs past the end of the file", count_at);
            v.raw = c.take(v.count * sz, "array data");
            if (v.elem_type == GGUFType::BOOL)
                for (uint64_t i = 0; i < v.count; ++i)
                    if (v.raw[i] > 1) c.fail("bool array element is neither 0 nor 1", count_at + 8 + i);
        }
    } else {
        read_scalar(c, type, v);
    }
    return v;
}

bool mul_overflows(uint64_t a, uint64_t b, uint64_t* out) { return __builtin_mul_overflow(a, b, out); }

}  // namespace

const char* gguf_type_name(GGUFType t) {
    static const char* names[] = {"u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool",
                                  "string", "array", "u64", "i64", "f64"};
    return uint32_t(t) <= 12 ? names[uint32_t(t)] : "?";
}

bool GGUFValue::is_integer() const {
    switch (type) {
        case GGUFType::U8: case GGUFType::I8: case GGUFType::U16: case GGUFType::I16:
        case GGUFType::U32: case GGUFType::I32: case GGUFType::U64: case GGUFType::I64: return true;
        default: return false;
    }
}

std::string GGUFTensor::shape_string() const {
    std::string s = "[";
    for (int i = 0; i < n_dims; ++i) s += (i ? ", " : "") + std::to_string(ne[i]);
    return s + "]";
}

namespace {

// A folder gets a sentence (and, for a Hugging Face one, the command that converts
// it) instead of the mapping's "not a regular file".
std::unique_ptr<MappedFile> map_model_file(const std::string& path) {
    if (checkpoint_kind(path) == CheckpointKind::Folder) {
        const std::string hint = conversion_hint(CheckpointKind::Folder, path);
        throw std::runtime_error(path + ": is a folder, not a GGUF file" + (hint.empty() ? "" : "; " + hint));
    }
    return std::make_unique<MappedFile>(path);
}

}  // namespace

GGUFFile::GGUFFile(const std::string& path) : GGUFFile(map_model_file(path)) {}

void GGUFFile::populate_in_background(const std::vector<const GGUFTensor*>& order) const {
    std::vector<std::pair<uint64_t, uint64_t>> ranges;
    for (const GGUFTensor* t : order) {
        const uint64_t offset = uint64_t(t->data - file_->data());
        if (!ranges.empty() && ranges.back().first + ranges.back().second + alignment_ >= offset &&
            ranges.back().first < offset)
            ranges.back().second = offset + t->nbytes - ranges.back().first;  // adjacent: one range
        else
            ranges.emplace_back(offset, t->nbytes);
    }
    file_->populate_in_background(std::move(ranges));
}

GGUFFile::GGUFFile(std::unique_ptr<MappedFile> file) : file_(std::move(file)) {
    const std::string& path = file_->path();
    Cursor c(file_->data(), file_->size(), file_->path());

    const uint32_t magic = c.read<uint32_t>("magic");
    if (magic != kMagic) {
        char got[5] = {0};
        std::memcpy(got, file_->data(), 4);
        for (char& ch : got)
            if (ch && (ch < 32 || ch > 126)) ch = '?';
        // A checkpoint minigpt convert reads gets the command that converts it.
        const std::string hint = conversion_hint(checkpoint_kind_of_bytes(file_->data(), size_t(std::min<uint64_t>(file_->size(), 16))), path);
        c.fail(std::string("not a GGUF file: magic is \"") + got + "\", expected \"GGUF\"" + (hint.empty() ? "" : "; " + hint), 0);
    }
    version_ = c.read<uint32_t>("version");
    if (version_ != 3)
        c.fail("unsupported GGUF version " + std::to_string(version_) +
                   " (minigpt reads version 3; re-convert the model with a current converter)",
               4);
    const uint64_t n_tensors = c.read<uint64_t>("tensor count");
    const uint64_t n_kv = c.read<uint64_t>("metadata count");
    // Each key/value takes at least 8+1+4 bytes, each tensor info at least 8+4+8+4+8.
    if (n_kv > c.remaining() / 13) c.fail("file truncated or corrupt: metadata count " + std::to_string(n_kv) + " cannot fit in the " + std::to_string(c.remaining()) + " bytes left", 16);
    if (n_tensors > c.remaining() / 32) c.fail("file truncated or corrupt: tensor count " + std::to_string(n_tensors) + " cannot fit in the " + std::to_string(c.remaining()) + " bytes left", 8);

    metadata_.reserve(n_kv);
    for (uint64_t i = 0; i < n_kv; ++i) {
        const uint64_t at = c.pos();
        std::string key(c.read_string("metadata key"));
        const uint64_t type_at = c.pos();
        uint32_t t = c.read<uint32_t>("metadata value type");
        if (!valid_type(t)) c.fail("metadata \"" + key + "\" has unknown value type " + std::to_string(t), type_at);
        if (meta_index_.count(key)) c.fail("duplicate metadata key \"" + key + "\"", at);
        GGUFValue v = read_value(c, GGUFType(t), 0);
        meta_index_[key] = metadata_.size();
        metadata_.emplace_back(std::move(key), std::move(v));
    }

    if (const GGUFValue* a = find("general.alignment")) {
        // The spec asks for a multiple of 8; below 4, f32 tensors could start at addresses
        // no float may be read from (found by fuzz_gguf: a misaligned load in matrix_row).
        if (!a->is_integer() || a->u64 < 8 || (a->u64 & (a->u64 - 1)) != 0 || a->u64 > (1u << 20))
            throw std::runtime_error(path + ": general.alignment must be a power of two integer between 8 and " +
                                     std::to_string(1u << 20) + " (the GGUF spec asks for a multiple of 8), got " +
                                     to_string(*a));
        alignment_ = a->u64;
    }

    tensors_.reserve(n_tensors);
    for (uint64_t i = 0; i < n_tensors; ++i) {
        GGUFTensor t;
        const uint64_t at = c.pos();
        t.name = std::string(c.read_string("tensor name"));
        const uint32_t n_dims = c.read<uint32_t>("tensor dimension count");
        if (n_dims == 0 || n_dims > kMaxDims)
            c.fail("tensor \"" + t.name + "\" has " + std::to_string(n_dims) + " dimensions (1 to 4 allowed)", at);
        t.n_dims = int(n_dims);
        uint64_t elems = 1;
        for (uint32_t d = 0; d < n_dims; ++d) {
            uint64_t n = c.read<uint64_t>("tensor dimension");
            if (n == 0 || n > (uint64_t(1) << 40))
                c.fail("tensor \"" + t.name + "\" has dimension " + std::to_string(d) + " = " + std::to_string(n), at);
            if (mul_overflows(elems, n, &elems) || elems > (uint64_t(1) << 40))
                c.fail("tensor \"" + t.name + "\" has too many elements", at);
            t.ne[d] = int64_t(n);
        }
        const uint64_t type_at = c.pos();
        const uint32_t type = c.read<uint32_t>("tensor type");
        if (!dtype_supported(type))
            c.fail("tensor \"" + t.name + "\" has type " + ggml_type_name(type) +
                       ", which minigpt does not support (supported: f32, f16, q8_0)",
                   type_at);
        t.type = DType(type);
        if (t.ne[0] % dtype_block_elems(t.type) != 0)
            c.fail("tensor \"" + t.name + "\": row length " + std::to_string(t.ne[0]) + " is not a multiple of the " +
                       dtype_name(t.type) + " block size",
                   at);
        t.nbytes = uint64_t(dtype_row_bytes(t.type, t.ne[0])) * (elems / uint64_t(t.ne[0]));
        t.offset = c.read<uint64_t>("tensor data offset");
        if (tensor_index_.count(t.name)) c.fail("duplicate tensor name \"" + t.name + "\"", at);
        tensor_index_[t.name] = tensors_.size();
        tensors_.push_back(std::move(t));
    }

    // The data section starts at the next multiple of the alignment.
    const uint64_t header_end = c.pos();
    data_offset_ = (header_end + alignment_ - 1) / alignment_ * alignment_;
    const uint64_t size = file_->size();
    if (!tensors_.empty() && data_offset_ > size)
        throw std::runtime_error(path + ": offset " + std::to_string(header_end) +
                                 ": file ends before the tensor data section begins");

    for (GGUFTensor& t : tensors_) {
        if (t.offset % alignment_ != 0)
            throw std::runtime_error(path + ": tensor \"" + t.name + "\": data offset " + std::to_string(t.offset) +
                                     " is not a multiple of the alignment " + std::to_string(alignment_));
        uint64_t begin = 0, end = 0;
        if (__builtin_add_overflow(data_offset_, t.offset, &begin) || __builtin_add_overflow(begin, t.nbytes, &end) ||
            end > size)
            throw std::runtime_error(path + ": tensor \"" + t.name + "\": data at offset " +
                                     std::to_string(data_offset_) + "+" + std::to_string(t.offset) + " (" +
                                     std::to_string(t.nbytes) + " bytes) runs past the end of the file (" +
                                     std::to_string(size) + " bytes); the file is truncated or corrupt");
        t.file_offset = begin;
        t.data = file_->data() + begin;
    }
    // No two tensors may share bytes.
    std::vector<const GGUFTensor*> by_offset;
    for (const GGUFTensor& t : tensors_) by_offset.push_back(&t);
    std::sort(by_offset.begin(), by_offset.end(),
              [](const GGUFTensor* a, const GGUFTensor* b) { return a->offset < b->offset; });
    for (size_t i = 1; i < by_offset.size(); ++i)
        if (by_offset[i - 1]->offset + by_offset[i - 1]->nbytes > by_offset[i]->offset)
            throw std::runtime_error(path + ": tensors \"" + by_offset[i - 1]->name + "\" and \"" +
                                     by_offset[i]->name + "\" overlap in the data section");
}

const GGUFValue* GGUFFile::find(const std::string& key) const {
    auto it = meta_index_.find(key);
    return it == meta_index_.end() ? nullptr : &metadata_[it->second].second;
}

const GGUFTensor* GGUFFile::find_tensor(const std::string& name) const {
    auto it = tensor_index_.find(name);
    return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

const GGUFTensor& GGUFFile::tensor(const std::string& name) const {
    const GGUFTensor* t = find_tensor(name);
    if (!t) throw std::runtime_error(path() + ": missing tensor \"" + name + "\"");
    return *t;
}

void GGUFFile::fail_key(const std::string& key, const std::string& what) const {
    throw std::runtime_error(path() + ": metadata \"" + key + "\": " + what);
}

uint64_t GGUFFile::get_uint(const std::string& key) const {
    const GGUFValue* v = find(key);
    if (!v) fail_key(key, "missing (required)");
    if (!v->is_integer()) fail_key(key, std::string("expected an integer, found ") + gguf_type_name(v->type));
    if (v->i64 < 0 && v->type != GGUFType::U64) fail_key(key, "must not be negative, found " + std::to_string(v->i64));
    return v->u64;
}
uint64_t GGUFFile::get_uint(const std::string& key, uint64_t dflt) const { return find(key) ? get_uint(key) : dflt; }

double GGUFFile::get_float(const std::string& key) const {
    const GGUFValue* v = find(key);
    if (!v) fail_key(key, "missing (required)");
    if (v->type == GGUFType::F32 || v->type == GGUFType::F64) return v->f64;
    if (v->is_integer()) return double(v->i64);
    fail_key(key, std::string("expected a number, found ") + gguf_type_name(v->type));
}
double GGUFFile::get_float(const std::string& key, double dflt) const { return find(key) ? get_float(key) : dflt; }

std::string GGUFFile::get_string(const std::string& key) const {
    const GGUFValue* v = find(key);
    if (!v) fail_key(key, "missing (required)");
    if (v->type != GGUFType::STRING) fail_key(key, std::string("expected a string, found ") + gguf_type_name(v->type));
    return std::string(v->str);
}
std::string GGUFFile::get_string(const std::string& key, const std::string& dflt) const {
    return find(key) ? get_string(key) : dflt;
}

bool GGUFFile::get_bool(const std::string& key) const {
    const GGUFValue* v = find(key);
    if (!v) fail_key(key, "missing (required)");
    if (v->type != GGUFType::BOOL && !v->is_integer())
        fail_key(key, std::string("expected a bool, found ") + gguf_type_name(v->type));
    return v->u64 != 0;
}
bool GGUFFile::get_bool(const std::string& key, bool dflt) const { return find(key) ? get_bool(key) : dflt; }

std::vector<std::string> GGUFFile::get_string_array(const std::string& key) const {
    const GGUFValue* v = find(key);
    if (!v) fail_key(key, "missing (required)");
    if (v->type != GGUFType::ARRAY || v->elem_type != GGUFType::STRING) fail_key(key, "expected an array of strings");
    return std::vector<std::string>(v->strings.begin(), v->strings.end());
}

namespace {
template <typename Out>
Out element_as(const GGUFValue& v, uint64_t i) {
    const uint8_t* p = v.raw + i * scalar_size(v.elem_type);
    auto ld = [p](auto tag) { decltype(tag) x; std::memcpy(&x, p, sizeof x); return x; };
    switch (v.elem_type) {
        case GGUFType::U8: return Out(ld(uint8_t{}));
        case GGUFType::I8: return Out(ld(int8_t{}));
        case GGUFType::U16: return Out(ld(uint16_t{}));
        case GGUFType::I16: return Out(ld(int16_t{}));
        case GGUFType::U32: return Out(ld(uint32_t{}));
        case GGUFType::I32: return Out(ld(int32_t{}));
        case GGUFType::U64: return Out(ld(uint64_t{}));
        case GGUFType::I64: return Out(ld(int64_t{}));
        case GGUFType::F32: return Out(ld(float{}));
        case GGUFType::F64: return Out(ld(double{}));
        case GGUFType::BOOL: return Out(ld(uint8_t{}));
        default: return Out(0);
    }
}
}  // namespace

std::vector<float> GGUFFile::get_float_array(const std::string& key) const {
    const GGUFValue* v = find(key);
    if (!v) fail_key(key, "missing (required)");
    if (v->type != GGUFType::ARRAY || !v->raw) fail_key(key, "expected a numeric array");
    std::vector<float> out(v->count);
    for (uint64_t i = 0; i < v->count; ++i) out[i] = element_as<float>(*v, i);
    return out;
}

std::vector<int32_t> GGUFFile::get_int_array(const std::string& key) const {
    const GGUFValue* v = find(key);
    if (!v) fail_key(key, "missing (required)");
    if (v->type != GGUFType::ARRAY || !v->raw || v->elem_type == GGUFType::F32 || v->elem_type == GGUFType::F64)
        fail_key(key, "expected an integer array");
    std::vector<int32_t> out(v->count);
    for (uint64_t i = 0; i < v->count; ++i) out[i] = element_as<int32_t>(*v, i);
    return out;
}

std::string GGUFFile::get_bytes(const std::string& key) const {
    const GGUFValue* v = find(key);
    if (!v) fail_key(key, "missing (required)");
    if (v->type != GGUFType::ARRAY || (v->elem_type != GGUFType::U8 && v->elem_type != GGUFType::I8))
        fail_key(key, "expected an array of bytes (u8)");
    return std::string(reinterpret_cast<const char*>(v->raw), v->count);
}

std::string GGUFFile::to_string(const GGUFValue& v, size_t max_items) {
    std::ostringstream os;
    switch (v.type) {
        case GGUFType::STRING: {
            std::string s(v.str.substr(0, 200));
            os << '"' << s << (v.str.size() > 200 ? "...\"" : "\"");
            break;
        }
        case GGUFType::F32: case GGUFType::F64: os << v.f64; break;
        case GGUFType::BOOL: os << (v.u64 ? "true" : "false"); break;
        case GGUFType::ARRAY: {
            os << gguf_type_name(v.elem_type) << "[" << v.count << "] [";
            const size_t n = size_t(std::min<uint64_t>(v.count, max_items));
            for (size_t i = 0; i < n; ++i) {
                if (i) os << ", ";
                if (v.elem_type == GGUFType::STRING) os << '"' << v.strings[i] << '"';
                else if (v.elem_type == GGUFType::ARRAY) os << "[...]";
                else if (v.elem_type == GGUFType::F32 || v.elem_type == GGUFType::F64) os << element_as<double>(v, i);
                else os << element_as<int64_t>(v, i);
            }
            if (v.count > n) os << ", ...";
            os << "]";
            break;
        }
        default:
            if (v.type == GGUFType::I8 || v.type == GGUFType::I16 || v.type == GGUFType::I32 || v.type == GGUFType::I64)
                os << v.i64;
            else
                os << v.u64;
    }
    return os.str();
}

}  // namespace minigpt
