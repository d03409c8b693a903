// format/torch_archive: torch.save's zip archives read natively, compared with what
// torch itself says about the same files (tests/data/torch/NAME.json, written with
// the archives by tests/data/torch/make_archives.py), plus damaged and hostile input.
#include <doctest/doctest.h>

#include <cstdint>
#include <cstring>
#include <map>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "format/f16.h"
#include "format/torch_archive.h"
#include "util/json.h"
#include "util/read_file.h"

using namespace minigpt;
using namespace std::string_literals;

namespace {

const std::string kDir = "tests/data/torch/";

PickleValue load_bytes(const std::string& bytes, const std::string& name = "test.pt") {
    return TorchArchive::load(name, reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
}

std::string load_error(const std::string& bytes, const std::string& name = "test.pt") {
    try {
        load_bytes(bytes, name);
    } catch (const std::runtime_error& e) {
        return e.what();
    }
    return "";
}

// One value of a tensor, read from the archive's bytes as the reader says where they are.
double element(const std::string& file, const TorchTensor& t, const std::vector<int64_t>& idx) {
    int64_t e = t.storage_offset;
    for (size_t j = 0; j < idx.size(); ++j) e += idx[j] * t.stride[j];
    const size_t w = t.element_size();
    REQUIRE(uint64_t(e + 1) * w <= t.storage_bytes);
    REQUIRE(t.data_offset + t.storage_bytes <= file.size());
    const char* p = file.data() + t.data_offset + e * w;
    if (t.dtype == "float32") { float v; std::memcpy(&v, p, 4); return v; }
    if (t.dtype == "float64") { double v; std::memcpy(&v, p, 8); return v; }
    if (t.dtype == "float16") { uint16_t v; std::memcpy(&v, p, 2); return f16_to_f32(v); }
    if (t.dtype == "bfloat16") {
        uint32_t bits = uint32_t(uint8_t(p[0])) << 16 | uint32_t(uint8_t(p[1])) << 24;
        float v;
        std::memcpy(&v, &bits, 4);
        return v;
    }
    if (t.dtype == "int64") { int64_t v; std::memcpy(&v, p, 8); return double(v); }
    if (t.dtype == "bool") return p[0] ? 1.0 : 0.0;
    FAIL("unexpected dtype " << t.dtype);
    return 0;
}

// The value tree flattened as make_archives.py's describe() does: path -> value.
void flatten(const PickleValue& v, const std::string& path, std::map<std::string, const PickleValue*>& out) {
    out[path] = &v;
    auto sub = [&](const std::string& k) { return path.empty() ? k : path + "/" + k; };
    if (v.kind == PickleValue::Kind::Dict) {
        for (const auto& kv : v.entries) {
            REQUIRE((kv.first.kind == PickleValue::Kind::String || kv.first.kind == PickleValue::Kind::Int));
            flatten(kv.second, sub(kv.first.kind == PickleValue::Kind::String ? kv.first.s : std::to_string(kv.first.i)),
                    out);
        }
    } else if (v.kind == PickleValue::Kind::List || v.kind == PickleValue::Kind::Tuple) {
        for (size_t j = 0; j < v.items.size(); ++j) flatten(v.items[j], sub(std::to_string(j)), out);
    }
}

const char* type_name(PickleValue::Kind k) {
    switch (k) {
    case PickleValue::Kind::None: return "none";
    case PickleValue::Kind::Bool: return "bool";
    case PickleValue::Kind::Int: return "int";
    case PickleValue::Kind::Float: return "float";
    case PickleValue::Kind::String: return "str";
    case PickleValue::Kind::Bytes: return "bytes";
    case PickleValue::Kind::List: return "list";
    case PickleValue::Kind::Tuple: return "tuple";
    case PickleValue::Kind::Dict: return "dict";
    case PickleValue::Kind::Tensor: return "tensor";
    }
    return "?";
}

// Compares the reader's view of NAME.pt with torch's in NAME.json; returns the tree.
PickleValue check_against_torch(const std::string& name) {
    const std::string file = read_file(kDir + name + ".pt");
    const Json side = json_parse(read_file(kDir + name + ".json"), name + ".json");
    PickleValue root = load_bytes(file, kDir + name + ".pt");
    std::map<std::string, const PickleValue*> got;
    flatten(root, "", got);
    const Json& want = side.at("entries");
    CHECK(got.size() == want.size());
    std::map<int64_t, std::string> torch_to_ours;  // storage identity: the same classes on both sides
    std::map<std::string, int64_t> ours_to_torch;
    for (const auto& [path, w] : want.items()) {
        CAPTURE(name);
        CAPTURE(path);
        auto it = got.find(path);
        REQUIRE(it != got.end());
        const PickleValue& v = *it->second;
        const std::string type = w.at("type").get<std::string>();
        REQUIRE(type == type_name(v.kind));
        if (type == "int") CHECK(v.i == w.at("value").get<int64_t>());
        if (type == "float") CHECK(v.f == w.at("value").get<double>());
        if (type == "bool") CHECK(v.b == w.at("value").get<bool>());
        if (type == "str") CHECK(v.s == w.at("value").get<std::string>());
        if (type == "dict" || type == "list" || type == "tuple")
            CHECK((type == "dict" ? v.entries.size() : v.items.size()) == w.at("len").get<size_t>());
        if (type != "tensor") continue;
        const TorchTensor& t = *v.tensor;
        CHECK(t.dtype == w.at("dtype").get<std::string>());
        CHECK(t.shape == w.at("shape").get<std::vector<int64_t>>());
        CHECK(t.stride == w.at("stride").get<std::vector<int64_t>>());
        CHECK(t.storage_offset == w.at("storage_offset").get<int64_t>());
        const int64_t key = w.at("storage_key").get<int64_t>();
        CHECK(torch_to_ours.emplace(key, t.storage_key).first->second == t.storage_key);
        CHECK(ours_to_torch.emplace(t.storage_key, key).first->second == key);
        for (const auto& s : w.at("samples")) {
            const std::vector<int64_t> idx = s.at(0).get<std::vector<int64_t>>();
            const double expected = s.at(1).is_boolean() ? double(s.at(1).get<bool>()) : s.at(1).get<double>();
            CHECK(element(file, t, idx) == expected);
        }
    }
    return root;
}

// A zip of stored members (CRCs left zero: the reader does not check them).
std::string make_zip(const std::vector<std::pair<std::string, std::string>>& members) {
    auto le = [](uint64_t v, int n) {
        std::string s;
        for (int j = 0; j < n; ++j) s.push_back(char(v >> (8 * j)));
        return s;
    };
    std::string out, central;
    for (const auto& [name, data] : members) {
        const size_t off = out.size();
        out += le(0x04034B50, 4) + le(20, 2) + le(0, 2) + le(0, 2) + le(0, 4) + le(0, 4) + le(data.size(), 4) +
               le(data.size(), 4) + le(name.size(), 2) + le(0, 2) + name + data;
        central += le(0x02014B50, 4) + le(20, 2) + le(20, 2) + le(0, 2) + le(0, 2) + le(0, 4) + le(0, 4) +
                   le(data.size(), 4) + le(data.size(), 4) + le(name.size(), 2) + le(0, 2) + le(0, 2) + le(0, 2) +
                   le(0, 2) + le(0, 4) + le(off, 4) + name;
    }
    const size_t cd = out.size();
    out += central;
    out += le(0x06054B50, 4) + le(0, 2) + le(0, 2) + le(members.size(), 2) + le(members.size(), 2) +
           le(central.size(), 4) + le(cd, 4) + le(0, 2);
    return out;
}

// An archive whose data.pkl is `pkl` (protocol 2 header added) and one float32 storage "0" of 4 elements.
std::string pickle_archive(const std::string& body) {
    return make_zip({{"a/data.pkl", "\x80\x02"s + body}, {"a/data/0", std::string(16, '\0')}});
}

// The persistent id of storage "0" (float32, n elements), then _rebuild_tensor_v2 of it.
std::string tensor_pickle(const std::string& geometry) {
    return "ctorch._utils\n_rebuild_tensor_v2\n((X\x07\0\0\0storagectorch\nFloatStorage\nX\x01\0\0\0"s +
           "0X\x03\0\0\0cpuK\x04tQ"s + geometry + "tR";
}

}  // namespace

TEST_CASE("torch archive: nanoGPT checkpoint as torch sees it") {
    PickleValue ck = check_against_torch("nanogpt");
    const PickleValue* model = ck.get("model");
    REQUIRE(model);
    const PickleValue* wte = model->get("transformer.wte.weight");
    const PickleValue* head = model->get("lm_head.weight");
    REQUIRE((wte && head));
    CHECK(wte->tensor->storage_key == head->tensor->storage_key);  // tied
    CHECK(wte->tensor->contiguous());
    CHECK_FALSE(model->get("_orig_mod.extra.transposed")->tensor->contiguous());
    CHECK(model->get("extra.rows")->tensor->contiguous());
    CHECK(model->get("extra.rows")->tensor->storage_offset == 6);
    CHECK(ck.get("model_args")->get("n_layer")->i == 2);
    CHECK(ck.get("model_args")->get("bias")->kind == PickleValue::Kind::Bool);
    CHECK(ck.get("best_val_loss")->tensor->shape.empty());
    CHECK(ck.get("missing") == nullptr);
    CHECK(ck.get("config")->get("small")->i == 200);
}

TEST_CASE("torch archive: bf16, f16 and zip64 archives as torch sees them") {
    check_against_torch("bf16");
    PickleValue f16 = check_against_torch("f16");
    PickleValue z64 = check_against_torch("zip64");
    CHECK(f16.get("wte.weight")->tensor->element_size() == 2);
    CHECK(z64.get("d")->tensor->element_size() == 8);
}

TEST_CASE("torch archive: refusals name the file and the problem") {
    const std::string forbidden = read_file(kDir + "forbidden.pt");
    std::string e = load_error(forbidden, "forbidden.pt");
    CHECK(e.find("forbidden.pt: refusing to load global 'posix.system'") == 0);

    e = load_error(read_file(kDir + "missing_storage.pt"), "m.pt");
    CHECK(e.find("m.pt: storage f16/data/0 is missing from the archive") == 0);

    e = load_error(read_file(kDir + "bigendian.pt"), "b.pt");
    CHECK(e.find("b.pt: byteorder is 'big'") == 0);

    CHECK(load_error("", "x.pt").find("x.pt: not a zip archive") == 0);
    CHECK(load_error("not a zip archive at all, just some text", "x.pt").find("x.pt: not a zip archive") == 0);
    CHECK(load_error("\x80\x02}q\0."s, "x.pt").find("not a zip archive") != std::string::npos);
    CHECK(load_error(make_zip({{"a/other", "x"}})).find("expected exactly one PREFIX/data.pkl") != std::string::npos);
    CHECK(load_error(make_zip({{"a/data.pkl", "\x80\x02N."}, {"b/data.pkl", "\x80\x02N."}}))
              .find("found a/data.pkl, b/data.pkl") != std::string::npos);
}

TEST_CASE("torch archive: hand-made pickles") {
    // Plain values and a tensor over the whole storage.
    PickleValue v = load_bytes(pickle_archive("}(X\x01\0\0\0t"s + tensor_pickle("K\0K\x02K\x02\x86K\x02K\x01\x86"s) +
                                              "X\x01\0\0\0n\x8a\x08\0\0\0\0\0\0\0\x80u."s));
    REQUIRE(v.get("t"));
    CHECK(v.get("t")->tensor->shape == std::vector<int64_t>{2, 2});
    CHECK(v.get("n")->i == INT64_MIN);
    // Too big for the storage (4 elements): offset 1 + 3 + 1 reaches element 5.
    CHECK(load_error(pickle_archive(tensor_pickle("K\x01K\x02K\x02\x86K\x03K\x01\x86") + "."))
              .find("reaches element 5 of a storage with 4 elements") != std::string::npos);
    // Geometry overflow.
    CHECK(load_error(pickle_archive(tensor_pickle("K\0\x8a\x08\xff\xff\xff\xff\xff\xff\xff\x7f\x85K\x04\x85"s) + "."))
              .find("overflows") != std::string::npos);
    // Integers beyond int64.
    CHECK(load_error(pickle_archive("\x8a\x09\0\0\0\0\0\0\0\x80\0."s))
              .find("does not fit in 64 bits") != std::string::npos);
    CHECK(load_bytes(pickle_archive("\x8a\x09\xff\xff\xff\xff\xff\xff\xff\xff\xff."s)).i == -1);
    // A list that contains itself, and exponential sharing through the memo.
    CHECK(load_error(pickle_archive("]q\0h\0a."s)).find("nested more than") != std::string::npos);
    std::string bomb = "]q\0"s;
    for (int j = 1; j < 60; ++j) bomb += "h" + std::string(1, char(j - 1)) + "h" + std::string(1, char(j - 1)) + "\x86q" + std::string(1, char(j));
    CHECK(load_error(pickle_archive(bomb + ".")).find("too large") != std::string::npos);
    // Stack underflow, a missing STOP, an unknown opcode, a non-callable REDUCE, BUILD on a list.
    CHECK(load_error(pickle_archive("0.")).find("stack underflow") != std::string::npos);
    CHECK(load_error(pickle_archive("N")).find("truncated") != std::string::npos);
    CHECK(load_error(pickle_archive("I1\n.")).find("unsupported pickle opcode 0x49") != std::string::npos);
    CHECK(load_error(pickle_archive("N)R.")).find("not callable") != std::string::npos);
    CHECK(load_error(pickle_archive("]Nb.")).find("BUILD on a list") != std::string::npos);
    // A bare global or storage in the result is not a plain value.
    CHECK(load_error(pickle_archive("ccollections\nOrderedDict\n.")).find("not a plain value") != std::string::npos);
    // Globals by STACK_GLOBAL too.
    CHECK(load_error(pickle_archive("X\x08\0\0\0builtinsX\x04\0\0\0eval\x93."s))
              .find("refusing to load global 'builtins.eval'") != std::string::npos);
}

TEST_CASE("torch archive: every prefix and many byte flips throw or parse, never crash") {
    for (const char* name : {"f16", "bf16", "zip64", "nanogpt"}) {
        const std::string file = read_file(kDir + name + ".pt");
        const size_t step = file.size() > 4000 ? 13 : 1;
        for (size_t n = 0; n < file.size(); n += step) {
            try {
                load_bytes(file.substr(0, n));
            } catch (const std::runtime_error&) {
            }
        }
        if (file.size() > 4000) continue;
        for (size_t j = 0; j < file.size(); ++j) {
            for (uint8_t x : {uint8_t(0x01), uint8_t(0x80), uint8_t(0xff)}) {
                std::string bad = file;
                bad[j] = char(bad[j] ^ x);
                try {
                    load_bytes(bad);
                } catch (const std::runtime_error&) {
                }
            }
        }
    }
}
