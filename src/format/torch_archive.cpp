// torch.save's zip archives: the zip directory (format/zip_archive.h), then data.pkl on
// a restricted pickle VM (format/torch_unpickler.h). This file holds what is torch's:
// the allowed globals, storages, _rebuild_tensor_v2, numpy scalars, the result as a
// PickleValue. Mirrors scripts/torch_pickle.py (see torch_archive.h); every size and
// offset is checked before use, with overflow-safe arithmetic.
#include "format/torch_archive.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>

#include "format/f16.h"
#include "format/torch_unpickler.h"
#include "util/utf8.h"

namespace minigpt {

namespace torch_pickle {

constexpr StorageClass kStorageClasses[] = {
    {"FloatStorage", "float32", 4}, {"HalfStorage", "float16", 2}, {"BFloat16Storage", "bfloat16", 2},
    {"DoubleStorage", "float64", 8}, {"LongStorage", "int64", 8},  {"IntStorage", "int32", 4},
    {"ShortStorage", "int16", 2},   {"CharStorage", "int8", 1},    {"ByteStorage", "uint8", 1},
    {"BoolStorage", "bool", 1},
};

const StorageClass* storage_class(std::string_view cls) {
    for (const auto& c : kStorageClasses)
        if (cls == c.cls) return &c;
    return nullptr;
}

PickleValue TorchUnpickler::run() {
    Node* top = execute();
    return convert(top, 0);
}

Node* TorchUnpickler::find_class(const std::string& module, const std::string& cls) {
    static const struct {
        const char* module;
        const char* name;
        Global g;
    } allowed[] = {
        {"collections", "OrderedDict", Global::OrderedDict},
        {"torch._utils", "_rebuild_tensor_v2", Global::RebuildTensorV2},
        {"torch._utils", "_rebuild_parameter", Global::RebuildParameter},
        {"numpy", "dtype", Global::NumpyDtype},
        {"numpy.core.multiarray", "scalar", Global::NumpyScalar},
        {"numpy._core.multiarray", "scalar", Global::NumpyScalar},  // numpy >= 2
        {"_codecs", "encode", Global::CodecsEncode},
    };
    for (const auto& a : allowed) {
        if (module == a.module && cls == a.name) {
            Node* x = make(K::Global);
            x->i = int64_t(a.g);
            x->s = module + "." + cls;
            return x;
        }
    }
    if (module == "torch") {
        if (const StorageClass* sc = storage_class(cls)) {
            Node* x = make(K::StorageType);
            x->storage = sc;
            x->s = "torch." + cls;
            return x;
        }
    }
    fail(name_, "refusing to load global '" + module + "." + cls +
                    "' from the pickle (only tensors, state dicts and plain values are accepted; this file may "
                    "run code)");
}

// BUILD: obj.__setstate__(state) or obj.__dict__.update(state), for what has them.
void TorchUnpickler::build() {
    Node* state = pop();
    Node* obj = top();
    if (obj->k == K::Dtype) {  // numpy.dtype.__setstate__((version, byteorder, ...))
        if (state->k != K::Tuple || state->items.size() < 2 || state->items[1]->k != K::String ||
            state->items[1]->s.size() != 1 || std::string_view("<>|=").find(state->items[1]->s[0]) ==
                                                  std::string_view::npos)
            bad("malformed numpy dtype state");
        obj->byteorder = state->items[1]->s[0];
        return;
    }
    // An OrderedDict (its _metadata), a tensor, a storage or a global: attributes, ignored.
    const bool has_dict = (obj->k == K::Dict && obj->b) || obj->k == K::Tensor || obj->k == K::Storage ||
                          obj->k == K::StorageType || obj->k == K::Global;
    if (!has_dict) bad(std::string("BUILD on a ") + kind_name(obj->k));
    auto attrs = [](const Node* x) { return x->k == K::None || x->k == K::Dict; };
    if (attrs(state)) return;
    if (state->k == K::Tuple && state->items.size() == 2 && attrs(state->items[0]) && attrs(state->items[1])) return;
    bad("BUILD with a state that is not a dict");
}

Node* TorchUnpickler::call(Node* fn, Node* args) {
    if (fn->k != K::Global) bad(std::string("REDUCE on a ") + kind_name(fn->k) + ", which is not callable");
    if (args->k != K::Tuple) bad("REDUCE expected an argument tuple");
    const std::vector<Node*>& a = args->items;
    auto nargs = [&](size_t lo, size_t hi) {
        if (a.size() < lo || a.size() > hi)
            bad(fn->s + " takes " + std::to_string(lo) + " to " + std::to_string(hi) + " arguments, not " +
                std::to_string(a.size()));
    };
    switch (Global(fn->i)) {
    case Global::OrderedDict: {
        nargs(0, 1);
        Node* d = make(K::Dict);
        d->b = true;
        if (a.empty()) return d;
        if (a[0]->k == K::Dict) {
            for (const auto& kv : a[0]->entries) dict_set(d, kv.first, kv.second);
            return d;
        }
        if (a[0]->k != K::List && a[0]->k != K::Tuple) bad("OrderedDict of a " + std::string(kind_name(a[0]->k)));
        for (Node* kv : a[0]->items) {
            if ((kv->k != K::List && kv->k != K::Tuple) || kv->items.size() != 2)
                bad("OrderedDict of something that is not (key, value) pairs");
            dict_set(d, kv->items[0], kv->items[1]);
        }
        return d;
    }
    case Global::RebuildTensorV2: nargs(4, 7); return rebuild_tensor(a[0], a[1], a[2], a[3]);
    case Global::RebuildParameter: nargs(1, 3); return a[0];
    case Global::NumpyDtype: {
        nargs(1, 3);
        static const char* kScalar[] = {"f2", "f4", "f8", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", "b1"};
        bool ok = false;
        if (a[0]->k == K::String)
            for (const char* t : kScalar) ok = ok || a[0]->s == t;
        if (!ok) bad("numpy dtype is not a plain number type");
        Node* x = make(K::Dtype);
        x->s = a[0]->s;
        x->byteorder = x->s[1] == '1' ? '|' : '<';
        return x;
    }
    case Global::NumpyScalar: {
        nargs(1, 2);
        if (a[0]->k != K::Dtype || a.size() < 2 || a[1]->k != K::Bytes ||
            a[1]->s.size() != size_t(a[0]->s[1] - '0'))
            bad("malformed numpy scalar");
        return numpy_scalar(a[0], a[1]->s);
    }
    case Global::CodecsEncode: {
        nargs(1, 2);
        if (a[0]->k != K::String || a.size() < 2 || a[1]->k != K::String || a[1]->s != "latin1")
            bad("_codecs.encode is only accepted for latin1 strings");
        Node* x = make(K::Bytes);
        const std::string& t = a[0]->s;  // valid UTF-8 (checked when read)
        for (size_t j = 0; j < t.size();) {
            uint32_t cp;
            j += decode_utf8(reinterpret_cast<const unsigned char*>(t.data()) + j, t.size() - j, &cp);
            if (cp > 0xFF) bad("_codecs.encode: a character is not latin-1");
            x->s.push_back(char(cp));
        }
        return x;
    }
    }
    bad("unknown global");
}

Node* TorchUnpickler::numpy_scalar(const Node* dtype, std::string bytes) {
    if (dtype->byteorder == '>') std::reverse(bytes.begin(), bytes.end());
    const char t = dtype->s[0];
    const size_t w = bytes.size();
    uint64_t u = 0;
    std::memcpy(&u, bytes.data(), w);  // little-endian host (x86-64, aarch64)
    if (t == 'b') {
        Node* x = make(K::Bool);
        x->b = u != 0;
        return x;
    }
    if (t == 'f') {
        Node* x = make(K::Float);
        if (w == 2) x->f = f16_to_f32(uint16_t(u));
        else if (w == 4) {
            float v;
            std::memcpy(&v, bytes.data(), 4);
            x->f = v;
        } else std::memcpy(&x->f, bytes.data(), 8);
        return x;
    }
    if (t == 'u') {
        if (u > uint64_t(INT64_MAX)) bad("a numpy uint64 does not fit in 64-bit signed integers");
        return make_int(int64_t(u));
    }
    // 'i': sign-extend from w bytes
    const int shift = int(64 - 8 * w);
    return make_int(int64_t(u << shift) >> shift);
}

Node* TorchUnpickler::persistent_load(Node* pid) {
    const auto& t = pid->items;
    if (pid->k != K::Tuple || t.size() != 5 || t[0]->k != K::String || t[0]->s != "storage" ||
        t[1]->k != K::StorageType || t[2]->k != K::String || t[4]->k != K::Int || t[4]->i < 0)
        bad("unexpected persistent id (expected ('storage', torch.<Type>Storage, key, location, numel))");
    const std::string& key = t[2]->s;
    auto it = storages_.find(key);
    if (it != storages_.end()) return it->second;
    const StorageClass* sc = t[1]->storage;
    const uint64_t numel = uint64_t(t[4]->i);
    const std::string member = prefix_ + "data/" + key;
    const ZipEntry* e = zip_.find(member);
    if (!e) fail(name_, "storage " + member + " is missing from the archive");
    uint64_t nbytes;
    if (__builtin_mul_overflow(numel, uint64_t(sc->size), &nbytes) || e->size < nbytes)
        fail(name_, "storage " + member + " has " + std::to_string(e->size) + " bytes, expected " +
                        (nbytes / sc->size == numel ? std::to_string(nbytes) : std::string("more")) + " for " +
                        std::to_string(numel) + " elements of " + sc->cls);
    Node* x = make(K::Storage);
    x->storage = sc;
    x->s = key;
    x->numel = numel;
    x->data_offset = zip_.data_start(member, *e);
    storages_.emplace(key, x);
    return x;
}

// _rebuild_tensor_v2(storage, storage_offset, size, stride, ...) with every index checked.
Node* TorchUnpickler::rebuild_tensor(Node* storage, Node* offset, Node* size, Node* stride) {
    if (storage->k != K::Storage) bad("tensor refers to something that is not a storage");
    auto ints = [](const Node* x, std::vector<int64_t>& out) {
        if (x->k != K::Tuple && x->k != K::List) return false;
        for (const Node* d : x->items) {
            if (d->k != K::Int || d->i < 0) return false;
            out.push_back(d->i);
        }
        return true;
    };
    auto tt = std::make_shared<TorchTensor>();
    if (!ints(size, tt->shape) || !ints(stride, tt->stride) || tt->shape.size() != tt->stride.size() ||
        offset->k != K::Int || offset->i < 0 || int64_t(tt->shape.size()) > kMaxDims)
        bad("bad tensor geometry (size, stride and offset must be non-negative ints, as many strides as sizes)");
    tt->storage_offset = offset->i;
    int64_t numel = 1, last = offset->i;
    bool empty = false;
    for (size_t j = 0; j < tt->shape.size(); ++j) {
        if (tt->shape[j] == 0) empty = true;
        if (__builtin_mul_overflow(numel, tt->shape[j], &numel)) bad("tensor has too many elements");
    }
    if (!empty) {
        for (size_t j = 0; j < tt->shape.size(); ++j) {
            int64_t step;
            if (__builtin_mul_overflow(tt->shape[j] - 1, tt->stride[j], &step) ||
                __builtin_add_overflow(last, step, &last))
                bad("tensor geometry overflows");
        }
        if (uint64_t(last) >= storage->numel)
            bad("tensor (offset=" + std::to_string(offset->i) + ") reaches element " + std::to_string(last) +
                " of a storage with " + std::to_string(storage->numel) + " elements");
    }
    tt->dtype = storage->storage->dtype;
    tt->data_offset = storage->data_offset;
    tt->storage_bytes = storage->numel * storage->storage->size;  // checked by persistent_load
    tt->storage_key = storage->s;
    Node* x = make(K::Tensor);
    x->tensor = std::move(tt);
    return x;
}

PickleValue TorchUnpickler::convert(const Node* x, int depth) {
    if (depth > kMaxDepth) bad("the result is nested more than " + std::to_string(kMaxDepth) + " deep");
    const uint64_t cost = sizeof(PickleValue) + x->s.size() + 16 * (x->items.size() + x->entries.size());
    if (cost > budget_) bad("the result is too large (shared values repeated too often)");
    budget_ -= cost;
    PickleValue v;
    switch (x->k) {
    case K::None: v.kind = PickleValue::Kind::None; break;
    case K::Bool: v.kind = PickleValue::Kind::Bool; v.b = x->b; break;
    case K::Int: v.kind = PickleValue::Kind::Int; v.i = x->i; break;
    case K::Float: v.kind = PickleValue::Kind::Float; v.f = x->f; break;
    case K::String: v.kind = PickleValue::Kind::String; v.s = x->s; break;
    case K::Bytes: v.kind = PickleValue::Kind::Bytes; v.s = x->s; break;
    case K::List:
    case K::Tuple:
        v.kind = x->k == K::List ? PickleValue::Kind::List : PickleValue::Kind::Tuple;
        v.items.reserve(x->items.size());
        for (const Node* y : x->items) v.items.push_back(convert(y, depth + 1));
        break;
    case K::Dict:
        v.kind = PickleValue::Kind::Dict;
        v.entries.reserve(x->entries.size());
        for (const auto& kv : x->entries) {
            PickleValue key = convert(kv.first, depth + 1);
            v.entries.emplace_back(std::move(key), convert(kv.second, depth + 1));
        }
        break;
    case K::Tensor: v.kind = PickleValue::Kind::Tensor; v.tensor = x->tensor; break;
    default:
        bad(std::string("the unpickled object holds a ") + kind_name(x->k) +
            (x->s.empty() ? std::string() : " '" + x->s + "'") + ", not a plain value or tensor");
    }
    return v;
}

}  // namespace torch_pickle

using namespace torch_pickle;

namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

}  // namespace

size_t TorchTensor::element_size() const {
    for (const auto& c : kStorageClasses)
        if (dtype == c.dtype) return c.size;
    return 0;
}

int64_t TorchTensor::numel() const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
}

bool TorchTensor::contiguous() const {
    if (shape.size() != stride.size()) return false;
    for (int64_t d : shape)
        if (d == 0) return true;
    int64_t expected = 1;
    for (size_t j = shape.size(); j-- > 0;) {
        if (shape[j] == 1) continue;
        if (stride[j] != expected) return false;
        if (__builtin_mul_overflow(expected, shape[j], &expected)) return false;
    }
    return true;
}

const PickleValue* PickleValue::get(std::string_view key) const {
    if (kind != Kind::Dict) return nullptr;
    for (const auto& kv : entries)
        if (kv.first.kind == Kind::String && kv.first.s == key) return &kv.second;
    return nullptr;
}

PickleValue TorchArchive::load(const std::string& name, const uint8_t* data, uint64_t size) {
    ZipArchive zip(name, data, size);
    std::vector<std::string> pkls;
    for (const std::string& n : zip.names()) {
        const size_t slash = n.find('/');
        if (slash != std::string::npos && n.find('/', slash + 1) == std::string::npos && n.size() >= 9 &&
            n.compare(n.size() - 9, 9, "/data.pkl") == 0)
            pkls.push_back(n);
    }
    if (pkls.size() != 1) {
        std::string found;
        for (const std::string& p : pkls) found += (found.empty() ? "" : ", ") + p;
        fail(name, "expected exactly one PREFIX/data.pkl in the archive, found " +
                       (pkls.empty() ? std::string("none") : found));
    }
    const std::string prefix = pkls[0].substr(0, pkls[0].size() - 8);
    if (const ZipEntry* e = zip.find(prefix + "byteorder")) {
        const uint64_t off = zip.data_start(prefix + "byteorder", *e);
        std::string order(reinterpret_cast<const char*>(data + off), std::min<uint64_t>(e->size, 64));
        while (!order.empty() && is_space(order.back())) order.pop_back();
        size_t b = 0;
        while (b < order.size() && is_space(order[b])) ++b;
        order.erase(0, b);
        if (order != "little")
            fail(name, "byteorder is '" + order + "'; only little-endian archives are supported");
    }
    const ZipEntry* pe = zip.find(pkls[0]);
    const uint64_t pkl_off = zip.data_start(pkls[0], *pe);
    TorchUnpickler u(name, zip, prefix, data, pkl_off, pe->size);
    return u.run();
}

}  // namespace minigpt
