// torch.save's zip archives: the zip directory, then data.pkl on a restricted pickle VM.
// Mirrors scripts/torch_pickle.py (see torch_archive.h); every size and offset is
// checked before use, with overflow-safe arithmetic.
#include "format/torch_archive.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <unordered_map>

#include "format/f16.h"
#include "util/utf8.h"

namespace minigpt {

namespace {

// ---- storage classes: torch.FloatStorage etc., the element type of a storage ----

struct StorageClass {
    const char* cls;    // torch.<cls>
    const char* dtype;  // torch's dtype name
    size_t size;        // bytes per element
};
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

// ---- little-endian reads (the caller has checked the bounds) ----

uint16_t rd16(const uint8_t* p) { return uint16_t(p[0] | (p[1] << 8)); }
uint32_t rd32(const uint8_t* p) { return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24; }
uint64_t rd64(const uint8_t* p) { return uint64_t(rd32(p)) | uint64_t(rd32(p + 4)) << 32; }

// True when [off, off + len) lies inside [0, size).
bool in_bounds(uint64_t off, uint64_t len, uint64_t size) { return off <= size && len <= size - off; }

[[noreturn]] void fail(const std::string& name, const std::string& what) {
    throw std::runtime_error(name + ": " + what);
}

// ---- the zip archive: central directory, local headers ----

struct ZipEntry {
    uint64_t size = 0, comp_size = 0, local_offset = 0;
    uint16_t method = 0, flags = 0;
};

class Zip {
public:
    Zip(const std::string& name, const uint8_t* data, uint64_t size) : name_(name), data_(data), size_(size) {
        parse();
    }

    const ZipEntry* find(const std::string& member) const {
        auto it = index_.find(member);
        return it == index_.end() ? nullptr : &entries_[it->second];
    }
    const std::vector<std::string>& names() const { return names_; }

    // Offset in the file of a stored member's data, its bytes checked to lie in the file.
    uint64_t data_start(const std::string& member, const ZipEntry& e) const {
        if (e.flags & 1) fail(name_, "zip member " + member + " is encrypted");
        if (e.method != 0)
            fail(name_, "zip member " + member + " is compressed (method " + std::to_string(e.method) +
                            "); only stored members are read natively (torch.save never compresses)");
        if (e.comp_size != e.size)
            fail(name_, "zip member " + member + " is stored but its sizes differ (" + std::to_string(e.comp_size) +
                            " and " + std::to_string(e.size) + ")");
        const uint64_t h = e.local_offset;
        if (!in_bounds(h, 30, size_) || rd32(data_ + h) != 0x04034B50)
            fail(name_, "no local zip header for " + member + " at offset " + std::to_string(h));
        const uint64_t start = h + 30 + rd16(data_ + h + 26) + rd16(data_ + h + 28);
        if (!in_bounds(start, e.size, size_))
            fail(name_, "zip member " + member + " (" + std::to_string(e.size) + " bytes at offset " +
                            std::to_string(start) + ") runs past the end of the file (" + std::to_string(size_) +
                            " bytes)");
        return start;
    }

private:
    void parse() {
        const char* not_zip =
            "not a zip archive (the legacy pre-1.6 torch format is not supported; re-save it with torch.save "
            "in a recent torch)";
        if (size_ < 22) fail(name_, not_zip);
        // The end-of-central-directory record: the last one whose comment fits the file.
        uint64_t eocd = UINT64_MAX;
        const uint64_t lowest = size_ - 22 > 65535 ? size_ - 22 - 65535 : 0;
        for (uint64_t pos = size_ - 22 + 1; pos-- > lowest;) {
            if (rd32(data_ + pos) == 0x06054B50 && rd16(data_ + pos + 20) <= size_ - 22 - pos) {
                eocd = pos;
                break;
            }
        }
        if (eocd == UINT64_MAX) fail(name_, not_zip);
        const uint8_t* r = data_ + eocd;
        uint64_t disk = rd16(r + 4), cd_disk = rd16(r + 6);
        uint64_t cd_size = rd32(r + 12), cd_off = rd32(r + 16);
        // ZIP64: a locator just before the record points at the zip64 end record.
        if (eocd >= 20 && rd32(data_ + eocd - 20) == 0x07064B50) {
            const uint64_t z = rd64(data_ + eocd - 20 + 8);
            if (!in_bounds(z, 56, size_) || rd32(data_ + z) != 0x06064B50)
                fail(name_, "corrupt zip: no zip64 end-of-central-directory record at offset " + std::to_string(z));
            disk = rd32(data_ + z + 16);
            cd_disk = rd32(data_ + z + 20);
            cd_size = rd64(data_ + z + 40);
            cd_off = rd64(data_ + z + 48);
        }
        if (disk != 0 || cd_disk != 0) fail(name_, "zip archives that span several disks are not supported");
        if (!in_bounds(cd_off, cd_size, size_))
            fail(name_, "corrupt zip: the central directory (" + std::to_string(cd_size) + " bytes at offset " +
                            std::to_string(cd_off) + ") lies outside the file (" + std::to_string(size_) +
                            " bytes)");
        uint64_t p = cd_off;
        const uint64_t end = cd_off + cd_size;
        while (p < end) {
            if (end - p < 46 || rd32(data_ + p) != 0x02014B50)
                fail(name_, "corrupt zip: bad central directory entry at offset " + std::to_string(p));
            const uint8_t* c = data_ + p;
            ZipEntry e;
            e.flags = rd16(c + 8);
            e.method = rd16(c + 10);
            e.comp_size = rd32(c + 20);
            e.size = rd32(c + 24);
            const uint64_t nlen = rd16(c + 28), xlen = rd16(c + 30), clen = rd16(c + 32);
            e.local_offset = rd32(c + 42);
            if (end - p - 46 < nlen + xlen + clen)
                fail(name_, "corrupt zip: central directory entry at offset " + std::to_string(p) +
                                " runs past the directory");
            std::string member(reinterpret_cast<const char*>(c + 46), nlen);
            read_zip64_extra(member, c + 46 + nlen, xlen, e);
            auto it = index_.find(member);
            if (it != index_.end()) {
                entries_[it->second] = e;  // as Python's zipfile: the last of the same name wins
            } else {
                index_.emplace(member, entries_.size());
                entries_.push_back(e);
            }
            names_.push_back(std::move(member));
            p += 46 + nlen + xlen + clen;
        }
    }

    // The zip64 extra field (id 1) holds, in this order, the 64-bit values of the
    // fields saturated at 0xFFFFFFFF: size, compressed size, local header offset.
    void read_zip64_extra(const std::string& member, const uint8_t* x, uint64_t len, ZipEntry& e) const {
        while (len >= 4) {
            const uint16_t id = rd16(x), n = rd16(x + 2);
            if (n > len - 4) fail(name_, "corrupt zip: bad extra field in the entry of " + member);
            if (id == 1) {
                const uint8_t* q = x + 4;
                uint64_t left = n;
                for (uint64_t* field : {&e.size, &e.comp_size, &e.local_offset}) {
                    if (*field != 0xFFFFFFFFu) continue;
                    if (left < 8) fail(name_, "corrupt zip: short zip64 extra field in the entry of " + member);
                    *field = rd64(q);
                    q += 8;
                    left -= 8;
                }
            }
            x += 4 + n;
            len -= 4 + n;
        }
    }

    const std::string& name_;
    const uint8_t* data_;
    uint64_t size_;
    std::vector<ZipEntry> entries_;
    std::unordered_map<std::string, size_t> index_;
    std::vector<std::string> names_;  // every entry in directory order, duplicates too
};

// ---- the pickle VM's values ----

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

const char* kind_name(K k) {
    switch (k) {
    case K::None: return "None";
    case K::Bool: return "bool";
    case K::Int: return "int";
    case K::Float: return "float";
    case K::String: return "str";
    case K::Bytes: return "bytes";
    case K::List: return "list";
    case K::Tuple: return "tuple";
    case K::Dict: return "dict";
    case K::Tensor: return "tensor";
    case K::Global: return "global";
    case K::StorageType: return "storage type";
    case K::Storage: return "storage";
    case K::Dtype: return "numpy dtype";
    }
    return "?";
}

// Bounds on what a hostile pickle may make us hold.
constexpr size_t kMaxNodes = size_t(1) << 22;   // values created
constexpr size_t kMaxStack = size_t(1) << 22;   // stack entries
constexpr size_t kMaxMarks = size_t(1) << 16;   // open MARKs
constexpr size_t kMaxMemo = size_t(1) << 22;    // memo entries
constexpr int kMaxDepth = 100;                  // nesting of the result
constexpr int64_t kMaxDims = 64;                // tensor dimensions

class Unpickler {
public:
    Unpickler(const std::string& name, const Zip& zip, const std::string& prefix, const uint8_t* file,
              uint64_t pkl_off, uint64_t pkl_size)
        : name_(name), zip_(zip), prefix_(prefix), p_(file + pkl_off), n_(pkl_size),
          budget_((uint64_t(64) << 20) + (pkl_size > (UINT64_MAX >> 5) ? UINT64_MAX >> 5 : pkl_size * 16)) {}

    PickleValue run() {
        Node* top = execute();
        return convert(top, 0);
    }

private:
    [[noreturn]] void bad(const std::string& what) const {
        fail(name_, "cannot unpickle " + prefix_ + "data.pkl: " + what + " (at byte " + std::to_string(op_pos_) + ")");
    }

    // ---- reading the stream ----
    const uint8_t* take(uint64_t len) {
        if (len > n_ - pos_) bad("pickle data was truncated");
        const uint8_t* q = p_ + pos_;
        pos_ += len;
        return q;
    }
    uint64_t u8() { return *take(1); }
    uint64_t u16() { return rd16(take(2)); }
    uint64_t u32() { return rd32(take(4)); }
    uint64_t u64() { return rd64(take(8)); }
    std::string line() {
        const uint8_t* start = p_ + pos_;
        const void* nl = std::memchr(start, '\n', n_ - pos_);
        if (!nl) bad("pickle data was truncated");
        const size_t len = static_cast<const uint8_t*>(nl) - start;
        pos_ += len + 1;
        return std::string(reinterpret_cast<const char*>(start), len);
    }

    // ---- values, stack, marks, memo ----
    Node* make(K k) {
        if (arena_.size() >= kMaxNodes) bad("too many values (more than " + std::to_string(kMaxNodes) + ")");
        arena_.push_back(std::make_unique<Node>());
        arena_.back()->k = k;
        return arena_.back().get();
    }
    Node* make_int(int64_t v) {
        Node* x = make(K::Int);
        x->i = v;
        return x;
    }
    Node* make_string(K k, const uint8_t* q, uint64_t len) {
        Node* x = make(k);
        x->s.assign(reinterpret_cast<const char*>(q), len);
        if (k == K::String && !valid_utf8(x->s)) bad("a string is not valid UTF-8");
        return x;
    }
    size_t fence() const { return marks_.empty() ? 0 : marks_.back(); }
    void push(Node* x) {
        if (stack_.size() >= kMaxStack) bad("the stack is too deep");
        stack_.push_back(x);
    }
    Node* pop() {
        if (stack_.size() <= fence()) bad("unpickling stack underflow");
        Node* x = stack_.back();
        stack_.pop_back();
        return x;
    }
    Node* top() const {
        if (stack_.size() <= fence()) bad("unpickling stack underflow");
        return stack_.back();
    }
    std::vector<Node*> pop_mark() {
        if (marks_.empty()) bad("could not find MARK");
        const size_t k = marks_.back();
        marks_.pop_back();
        std::vector<Node*> items(stack_.begin() + k, stack_.end());
        stack_.resize(k);
        return items;
    }
    void memo_put(uint64_t idx, Node* x) {
        if (memo_.size() >= kMaxMemo && !memo_.count(idx)) bad("the memo is too large");
        memo_[idx] = x;
    }
    Node* memo_get(uint64_t idx) const {
        auto it = memo_.find(idx);
        if (it == memo_.end()) bad("memo value not found at index " + std::to_string(idx));
        return it->second;
    }

    // Python's dict[key] = value: a key equal to an existing one replaces its value.
    void dict_set(Node* d, Node* key, Node* value) {
        if (key->k == K::List || key->k == K::Dict) bad(std::string("unhashable type: '") + kind_name(key->k) + "'");
        size_t* slot = nullptr;
        const size_t next = d->entries.size();
        if (key->k == K::String) {
            if (!d->str_keys) d->str_keys = std::make_unique<std::unordered_map<std::string, size_t>>();
            slot = &d->str_keys->emplace(key->s, next).first->second;
        } else if (key->k == K::Int || key->k == K::Bool ||
                   (key->k == K::Float && key->f >= -9.2e18 && key->f <= 9.2e18 && key->f == double(int64_t(key->f)))) {
            const int64_t v = key->k == K::Int ? key->i : key->k == K::Bool ? int64_t(key->b) : int64_t(key->f);
            if (!d->int_keys) d->int_keys = std::make_unique<std::unordered_map<int64_t, size_t>>();
            slot = &d->int_keys->emplace(v, next).first->second;
        }
        if (slot && *slot != next) d->entries[*slot].second = value;
        else d->entries.emplace_back(key, value);
    }
    Node* dict_top(const char* op) {
        Node* d = top();
        if (d->k != K::Dict) bad(std::string(op) + " on a " + kind_name(d->k) + ", not a dict");
        return d;
    }

    // ---- integers ----
    Node* long_bytes(uint64_t len) {
        const uint8_t* q = take(len);
        if (len == 0) return make_int(0);
        const bool neg = q[len - 1] & 0x80;
        for (uint64_t j = 8; j < len; ++j)
            if (q[j] != (neg ? 0xFF : 0x00)) bad("an integer does not fit in 64 bits");
        uint64_t v = neg ? UINT64_MAX : 0;
        for (uint64_t j = 0; j < len && j < 8; ++j) {
            v &= ~(uint64_t(0xFF) << (8 * j));
            v |= uint64_t(q[j]) << (8 * j);
        }
        if (len > 8 && bool(v >> 63) != neg) bad("an integer does not fit in 64 bits");
        int64_t s;
        std::memcpy(&s, &v, 8);
        return make_int(s);
    }

    // ---- the VM ----
    Node* execute() {
        while (true) {
            op_pos_ = pos_;
            const uint8_t op = uint8_t(u8());
            switch (op) {
            case 0x80: {  // PROTO
                const uint64_t v = u8();
                if (v > 5) bad("unsupported pickle protocol " + std::to_string(v));
                break;
            }
            case 0x95: u64(); break;  // FRAME: a length hint
            case '.': {               // STOP
                return pop();
            }
            case '}': push(make(K::Dict)); break;  // EMPTY_DICT
            case ']': push(make(K::List)); break;  // EMPTY_LIST
            case ')': push(make(K::Tuple)); break; // EMPTY_TUPLE
            case '(':                              // MARK
                if (marks_.size() >= kMaxMarks) bad("too many nested MARKs");
                marks_.push_back(stack_.size());
                break;
            case 'q': memo_put(u8(), top()); break;          // BINPUT
            case 'r': memo_put(u32(), top()); break;         // LONG_BINPUT
            case 0x94: memo_put(memo_.size(), top()); break; // MEMOIZE
            case 'h': push(memo_get(u8())); break;           // BINGET
            case 'j': push(memo_get(u32())); break;          // LONG_BINGET
            case 'X': {  // BINUNICODE
                const uint64_t len = u32();
                push(make_string(K::String, take(len), len));
                break;
            }
            case 0x8c: {  // SHORT_BINUNICODE
                const uint64_t len = u8();
                push(make_string(K::String, take(len), len));
                break;
            }
            case 0x8d: {  // BINUNICODE8
                const uint64_t len = u64();
                push(make_string(K::String, take(len), len));
                break;
            }
            case 'B': {  // BINBYTES
                const uint64_t len = u32();
                push(make_string(K::Bytes, take(len), len));
                break;
            }
            case 'C': {  // SHORT_BINBYTES
                const uint64_t len = u8();
                push(make_string(K::Bytes, take(len), len));
                break;
            }
            case 0x8e: {  // BINBYTES8
                const uint64_t len = u64();
                push(make_string(K::Bytes, take(len), len));
                break;
            }
            case 'J': push(make_int(int32_t(uint32_t(u32())))); break;  // BININT
            case 'K': push(make_int(int64_t(u8()))); break;             // BININT1
            case 'M': push(make_int(int64_t(u16()))); break;            // BININT2
            case 0x8a: push(long_bytes(u8())); break;                   // LONG1
            case 0x8b: push(long_bytes(u32())); break;                  // LONG4
            case 'G': {  // BINFLOAT: big-endian
                const uint8_t* q = take(8);
                uint64_t bits = 0;
                for (int j = 0; j < 8; ++j) bits = bits << 8 | q[j];
                Node* x = make(K::Float);
                std::memcpy(&x->f, &bits, 8);
                push(x);
                break;
            }
            case 0x88:
            case 0x89: {  // NEWTRUE, NEWFALSE
                Node* x = make(K::Bool);
                x->b = op == 0x88;
                push(x);
                break;
            }
            case 'N': push(make(K::None)); break;  // NONE
            case 't': {                            // TUPLE
                Node* x = make(K::Tuple);
                x->items = pop_mark();
                push(x);
                break;
            }
            case 0x85:
            case 0x86:
            case 0x87: {  // TUPLE1, TUPLE2, TUPLE3
                Node* x = make(K::Tuple);
                x->items.resize(op - 0x84);
                for (size_t j = x->items.size(); j-- > 0;) x->items[j] = pop();
                push(x);
                break;
            }
            case 'l': {  // LIST
                Node* x = make(K::List);
                x->items = pop_mark();
                push(x);
                break;
            }
            case 'd': {  // DICT
                std::vector<Node*> kv = pop_mark();
                if (kv.size() % 2) bad("DICT with an odd number of items");
                Node* x = make(K::Dict);
                for (size_t j = 0; j < kv.size(); j += 2) dict_set(x, kv[j], kv[j + 1]);
                push(x);
                break;
            }
            case 'a': {  // APPEND
                Node* v = pop();
                Node* l = top();
                if (l->k != K::List) bad(std::string("APPEND to a ") + kind_name(l->k) + ", not a list");
                l->items.push_back(v);
                break;
            }
            case 'e': {  // APPENDS
                std::vector<Node*> vs = pop_mark();
                Node* l = top();
                if (l->k != K::List) bad(std::string("APPENDS to a ") + kind_name(l->k) + ", not a list");
                l->items.insert(l->items.end(), vs.begin(), vs.end());
                break;
            }
            case 's': {  // SETITEM
                Node* v = pop();
                Node* key = pop();
                dict_set(dict_top("SETITEM"), key, v);
                break;
            }
            case 'u': {  // SETITEMS
                std::vector<Node*> kv = pop_mark();
                if (kv.size() % 2) bad("SETITEMS with an odd number of items");
                Node* d = dict_top("SETITEMS");
                for (size_t j = 0; j < kv.size(); j += 2) dict_set(d, kv[j], kv[j + 1]);
                break;
            }
            case '0': {  // POP: the top value, or a MARK right on top
                if (stack_.size() > fence()) stack_.pop_back();
                else if (!marks_.empty()) marks_.pop_back();
                else bad("unpickling stack underflow");
                break;
            }
            case '1': pop_mark(); break;  // POP_MARK
            case '2': push(top()); break; // DUP
            case 'c': {                   // GLOBAL
                std::string module = line();
                std::string cls = line();
                push(find_class(module, cls));
                break;
            }
            case 0x93: {  // STACK_GLOBAL
                Node* cls = pop();
                Node* module = pop();
                if (module->k != K::String || cls->k != K::String) bad("STACK_GLOBAL requires str");
                push(find_class(module->s, cls->s));
                break;
            }
            case 'R': {  // REDUCE
                Node* args = pop();
                Node* fn = pop();
                push(call(fn, args));
                break;
            }
            case 0x81: {  // NEWOBJ: cls.__new__(cls, *args); only OrderedDict is a class here
                Node* args = pop();
                Node* cls = pop();
                if (args->k != K::Tuple) bad("NEWOBJ expected an argument tuple");
                if (cls->k != K::Global || cls->i != int64_t(Global::OrderedDict))
                    bad(std::string("NEWOBJ of a ") + kind_name(cls->k) + ", not a class");
                Node* d = make(K::Dict);
                d->b = true;
                push(d);
                break;
            }
            case 'b': build(); break;  // BUILD
            case 'Q': {                // BINPERSID
                Node* pid = pop();
                push(persistent_load(pid));
                break;
            }
            default: {
                static const char* hex = "0123456789abcdef";
                bad(std::string("unsupported pickle opcode 0x") + hex[op >> 4] + hex[op & 15]);
            }
            }
        }
    }

    Node* find_class(const std::string& module, const std::string& cls) {
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
    void build() {
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

    Node* call(Node* fn, Node* args) {
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

    Node* numpy_scalar(const Node* dtype, std::string bytes) {
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

    Node* persistent_load(Node* pid) {
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
    Node* rebuild_tensor(Node* storage, Node* offset, Node* size, Node* stride) {
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

    // ---- the result: the graph as a tree of PickleValue, bounded in depth and size ----
    PickleValue convert(const Node* x, int depth) {
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

    const std::string& name_;
    const Zip& zip_;
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
    Zip zip(name, data, size);
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
    Unpickler u(name, zip, prefix, data, pkl_off, pe->size);
    return u.run();
}

}  // namespace minigpt
