// GGUF reader: a valid file round-trips through the writer, and every kind of
// bad file gives an error that names the file and the problem.
#include <doctest/doctest.h>

#include <cstring>
#include <fstream>
#include <sstream>

#include "format/gguf.h"
#include "runtime/model.h"
#include "tiny_model.h"

using namespace minigpt;
using namespace minigpt::test;

namespace {

std::string read_all(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}
void write_all(const std::string& path, const std::string& bytes) {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f.write(bytes.data(), std::streamsize(bytes.size()));
}

// Byte offset of the tensor-info field `field` (0 = n_dims, 1 = ne[0], ..., or
// "type"/"offset") of tensor `name`, found by its length-prefixed name.
size_t tensor_info_at(const std::string& bytes, const std::string& name) {
    std::string needle(8, '\0');
    uint64_t len = name.size();
    std::memcpy(needle.data(), &len, 8);
    needle += name;
    // The tensor infos come after the metadata; search from the end of the header.
    size_t at = bytes.rfind(needle);
    REQUIRE(at != std::string::npos);
    return at + needle.size();  // -> n_dims
}

template <typename T>
void poke(std::string& bytes, size_t at, T v) {
    std::memcpy(bytes.data() + at, &v, sizeof v);
}

std::string valid_tiny_file() {
    TempPath p("valid.gguf");
    TinyModelData m;
    build_tiny_gpt2(m, TinyShape{}, DType::F32, 7);
    m.writer.set_i32_array("test.array", {1, 2, 3});
    m.writer.write(p.path);
    return read_all(p.path);
}

// Writes `bytes` to a file and loads it as a model; returns the error message.
std::string load_error(const std::string& bytes, const std::string& name) {
    TempPath p(name);
    write_all(p.path, bytes);
    try {
        Model::load(p.path);
    } catch (const std::exception& e) {
        std::string msg = e.what();
        MESSAGE(name << ": " << msg);
        CHECK(msg.find(p.path) != std::string::npos);  // every message names the file
        CHECK(msg.find('\n') == std::string::npos);    // on one line
        return msg;
    }
    FAIL("loading " << name << " did not fail");
    return "";
}

bool contains(const std::string& s, const std::string& sub) { return s.find(sub) != std::string::npos; }

}  // namespace

TEST_CASE("gguf: writer and reader round-trip metadata and tensors") {
    TempPath p("roundtrip.gguf");
    GGUFWriter w;
    w.set_u32("a.u32", 42);
    w.set_i32("a.i32", -5);
    w.set_f32("a.f32", 1.5f);
    w.set_bool("a.bool", true);
    w.set_string("a.str", "h\xc3\xa9llo");
    w.set_string_array("a.strs", {"x", "", "yz"});
    w.set_f32_array("a.floats", {0.5f, -2.f});
    w.set_u8_array("a.bytes", std::string("\x00\x01\xff", 3));
    std::vector<float> data(6);
    for (int i = 0; i < 6; ++i) data[size_t(i)] = float(i) * 0.25f;
    w.add_tensor("t", DType::F32, {3, 2}, data.data());
    w.add_tensor("u", DType::F32, {1}, data.data());
    w.write(p.path, 64);

    GGUFFile f(p.path);
    CHECK(f.version() == 3);
    CHECK(f.alignment() == 64);
    CHECK(f.get_uint("a.u32") == 42);
    CHECK(f.find("a.i32")->i64 == -5);
    CHECK(f.get_float("a.f32") == 1.5);
    CHECK(f.get_bool("a.bool"));
    CHECK(f.get_string("a.str") == "h\xc3\xa9llo");
    CHECK(f.get_string_array("a.strs") == std::vector<std::string>{"x", "", "yz"});
    CHECK(f.get_float_array("a.floats") == std::vector<float>{0.5f, -2.f});
    CHECK(f.get_bytes("a.bytes") == std::string("\x00\x01\xff", 3));
    const GGUFTensor& t = f.tensor("t");
    CHECK(t.ne[0] == 3);
    CHECK(t.ne[1] == 2);
    CHECK(t.file_offset % 64 == 0);
    CHECK(std::memcmp(t.data, data.data(), 24) == 0);
    CHECK(f.tensor("u").offset % 64 == 0);
    CHECK_THROWS_WITH(f.get_uint("a.str"), doctest::Contains("expected an integer"));
    CHECK_THROWS_WITH(f.get_uint("missing.key"), doctest::Contains("missing.key"));
}

TEST_CASE("gguf: a valid tiny model loads with the right hyperparameters") {
    TempPath p("tiny.gguf");
    write_all(p.path, valid_tiny_file());
    auto m = Model::load(p.path);
    CHECK(m->config().n_vocab == 96);
    CHECK(m->config().n_layer == 2);
    CHECK(m->config().head_dim() == 8);
    CHECK(!m->weights().tied_output);
}

TEST_CASE("gguf: bad files give one clear error naming the file and the problem") {
    const std::string good = valid_tiny_file();

    SUBCASE("empty file") { CHECK(contains(load_error("", "empty.gguf"), "empty")); }
    SUBCASE("truncated header") {
        CHECK(contains(load_error(good.substr(0, 20), "trunc_header.gguf"), "truncated"));
    }
    SUBCASE("wrong magic") {
        std::string b = good;
        b[0] = 'X';
        CHECK(contains(load_error(b, "magic.gguf"), "not a GGUF file"));
    }
    SUBCASE("unsupported version") {
        std::string b = good;
        poke<uint32_t>(b, 4, 2);
        std::string msg = load_error(b, "version.gguf");
        CHECK(contains(msg, "unsupported GGUF version 2"));
    }
    SUBCASE("tensor data past the end of the file") {
        std::string msg = load_error(good.substr(0, good.size() - 100), "trunc_data.gguf");
        CHECK(contains(msg, "runs past the end of the file"));
        CHECK(contains(msg, "output.weight"));
    }
    SUBCASE("misaligned tensor data") {
        std::string b = good;
        const size_t at = tensor_info_at(b, "output_norm.bias") + 4 + 8 + 4;  // n_dims, ne[0], type -> offset
        uint64_t off;
        std::memcpy(&off, b.data() + at, 8);
        poke<uint64_t>(b, at, off + 4);
        std::string msg = load_error(b, "misaligned.gguf");
        CHECK(contains(msg, "not a multiple of the alignment"));
        CHECK(contains(msg, "output_norm.bias"));
    }
    SUBCASE("missing tensor") {
        std::string b = good;
        const size_t at = tensor_info_at(b, "blk.1.ffn_up.bias");
        b[at - 2] = 'X';  // "blk.1.ffn_up.biXs"
        std::string msg = load_error(b, "missing.gguf");
        CHECK(contains(msg, "missing tensor \"blk.1.ffn_up.bias\""));
    }
    SUBCASE("wrong shape") {
        std::string b = good;
        poke<uint64_t>(b, tensor_info_at(b, "output_norm.bias") + 4, 16);
        std::string msg = load_error(b, "shape.gguf");
        CHECK(contains(msg, "output_norm.bias"));
        CHECK(contains(msg, "shape [16], expected [32]"));
    }
    SUBCASE("unknown tensor type") {
        std::string b = good;
        poke<uint32_t>(b, tensor_info_at(b, "output_norm.bias") + 4 + 8, 99);
        std::string msg = load_error(b, "type.gguf");
        CHECK(contains(msg, "type 99"));
        CHECK(contains(msg, "output_norm.bias"));
    }
    SUBCASE("hyperparameters that disagree with the shapes") {
        TempPath p("hp.gguf");
        TinyModelData m;
        build_tiny_gpt2(m, TinyShape{}, DType::F32, 7);
        m.writer.set_u32("gpt2.feed_forward_length", 100);
        m.writer.write(p.path);
        std::string msg = load_error(read_all(p.path), "hp2.gguf");
        CHECK(contains(msg, "blk.0.ffn_up.weight"));
        CHECK(contains(msg, "n_ff=100"));
    }
    SUBCASE("huge metadata array length") {
        std::string b = good;
        std::string key = "test.array";
        size_t at = b.find(key);
        REQUIRE(at != std::string::npos);
        poke<uint64_t>(b, at + key.size() + 4 + 4, uint64_t(1) << 60);
        std::string msg = load_error(b, "huge_array.gguf");
        CHECK(contains(msg, "runs past the end of the file"));
    }
    SUBCASE("huge string length") {
        std::string b = good;
        poke<uint64_t>(b, 24, uint64_t(1) << 62);  // the first key's length
        CHECK(contains(load_error(b, "huge_string.gguf"), "absurd"));
    }
    SUBCASE("wrong architecture") {
        TempPath p("arch.gguf");
        TinyModelData m;
        build_tiny_gpt2(m, TinyShape{}, DType::F32, 7);
        m.writer.set_string("general.architecture", "llama");
        m.writer.write(p.path);
        CHECK(contains(load_error(read_all(p.path), "arch2.gguf"), "\"llama\""));
    }
}

TEST_CASE("gguf: a file that is not there names the path") {
    CHECK_THROWS_WITH(Model::load("/nonexistent/model.gguf"), doctest::Contains("/nonexistent/model.gguf: cannot open"));
}
