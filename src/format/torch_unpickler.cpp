#include "format/torch_unpickler.h"

#include <cstring>

#include "format/le_bytes.h"
#include "util/utf8.h"

namespace minigpt::torch_pickle {

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

void TorchUnpickler::bad(const std::string& what) const {
    fail(name_, "cannot unpickle " + prefix_ + "data.pkl: " + what + " (at byte " + std::to_string(op_pos_) + ")");
}

const uint8_t* TorchUnpickler::take(uint64_t len) {
    if (len > n_ - pos_) bad("pickle data was truncated");
    const uint8_t* q = p_ + pos_;
    pos_ += len;
    return q;
}

uint64_t TorchUnpickler::u8() { return *take(1); }

uint64_t TorchUnpickler::u16() { return le16(take(2)); }

uint64_t TorchUnpickler::u32() { return le32(take(4)); }

uint64_t TorchUnpickler::u64() { return le64(take(8)); }

std::string TorchUnpickler::line() {
    const uint8_t* start = p_ + pos_;
    const void* nl = std::memchr(start, '\n', n_ - pos_);
    if (!nl) bad("pickle data was truncated");
    const size_t len = static_cast<const uint8_t*>(nl) - start;
    pos_ += len + 1;
    return std::string(reinterpret_cast<const char*>(start), len);
}

Node* TorchUnpickler::make(K k) {
    if (arena_.size() >= kMaxNodes) bad("too many values (more than " + std::to_string(kMaxNodes) + ")");
    arena_.push_back(std::make_unique<Node>());
    arena_.back()->k = k;
    return arena_.back().get();
}

Node* TorchUnpickler::make_int(int64_t v) {
    Node* x = make(K::Int);
    x->i = v;
    return x;
}

Node* TorchUnpickler::read_string(K k, uint64_t len) {
    const uint8_t* q = take(len);
    Node* x = make(k);
    x->s.assign(reinterpret_cast<const char*>(q), len);
    if (k == K::String && !valid_utf8(x->s)) bad("a string is not valid UTF-8");
    return x;
}

size_t TorchUnpickler::fence() const { return marks_.empty() ? 0 : marks_.back(); }

void TorchUnpickler::push(Node* x) {
    if (stack_.size() >= kMaxStack) bad("the stack is too deep");
    stack_.push_back(x);
}

Node* TorchUnpickler::pop() {
    if (stack_.size() <= fence()) bad("unpickling stack underflow");
    Node* x = stack_.back();
    stack_.pop_back();
    return x;
}

Node* TorchUnpickler::top() const {
    if (stack_.size() <= fence()) bad("unpickling stack underflow");
    return stack_.back();
}

std::vector<Node*> TorchUnpickler::pop_mark() {
    if (marks_.empty()) bad("could not find MARK");
    const size_t k = marks_.back();
    marks_.pop_back();
    std::vector<Node*> items(stack_.begin() + k, stack_.end());
    stack_.resize(k);
    return items;
}

void TorchUnpickler::memo_put(uint64_t idx, Node* x) {
    if (memo_.size() >= kMaxMemo && !memo_.count(idx)) bad("the memo is too large");
    memo_[idx] = x;
}

Node* TorchUnpickler::memo_get(uint64_t idx) const {
    auto it = memo_.find(idx);
    if (it == memo_.end()) bad("memo value not found at index " + std::to_string(idx));
    return it->second;
}

// Python's dict[key] = value: a key equal to an existing one replaces its value.
void TorchUnpickler::dict_set(Node* d, Node* key, Node* value) {
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

Node* TorchUnpickler::dict_top(const char* op) {
    Node* d = top();
    if (d->k != K::Dict) bad(std::string(op) + " on a " + kind_name(d->k) + ", not a dict");
    return d;
}

Node* TorchUnpickler::long_bytes(uint64_t len) {
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

Node* TorchUnpickler::execute() {
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
        // Strings and bytes: a length of 1, 4 or 8 bytes, then the data.
        case 0x8c: push(read_string(K::String, u8())); break;   // SHORT_BINUNICODE
        case 'X': push(read_string(K::String, u32())); break;   // BINUNICODE
        case 0x8d: push(read_string(K::String, u64())); break;  // BINUNICODE8
        case 'C': push(read_string(K::Bytes, u8())); break;     // SHORT_BINBYTES
        case 'B': push(read_string(K::Bytes, u32())); break;    // BINBYTES
        case 0x8e: push(read_string(K::Bytes, u64())); break;   // BINBYTES8
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

}  // namespace minigpt::torch_pickle
