// format/checkpoint_kind: what a model path holds when it is not GGUF, and the
// sentence every command loading a model gives for it (the GGUF reader's error
// names the file, the bad magic and the `minigpt convert` command that helps).
#include <doctest/doctest.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>

#include "format/checkpoint_kind.h"
#include "format/gguf.h"
#include "tiny_model.h"

using namespace minigpt;
using minigpt::test::TempPath;

namespace {

CheckpointKind kind_of(const std::string& bytes) {
    return checkpoint_kind_of_bytes(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
}

std::string le32(uint32_t v) { return std::string(reinterpret_cast<const char*>(&v), 4); }
std::string le64(uint64_t v) { return std::string(reinterpret_cast<const char*>(&v), 8); }

std::string gguf_error(const std::string& path) {
    try {
        GGUFFile f(path);
    } catch (const std::runtime_error& e) {
        return e.what();
    }
    return "";
}

}  // namespace

TEST_CASE("checkpoint kinds from the first bytes") {
    CHECK(kind_of("GGUF\x03\0\0\0") == CheckpointKind::Gguf);
    CHECK(kind_of(std::string("PK\x03\x04", 4) + "rest") == CheckpointKind::TorchZip);
    CHECK(kind_of(le32(20240326) + le32(3)) == CheckpointKind::LlmC);
    CHECK(kind_of(le32(20240328) + le32(2)) == CheckpointKind::Unknown);  // llm.c's tokenizer file
    CHECK(kind_of(le64(30) + "{\"a\": 1}") == CheckpointKind::Safetensors);
    CHECK(kind_of(le64(uint64_t(1) << 40) + "{") == CheckpointKind::Unknown);  // absurd header length
    CHECK(kind_of("GGU") == CheckpointKind::Unknown);
    CHECK(kind_of("") == CheckpointKind::Unknown);
}

TEST_CASE("conversion hints name the command, only for what minigpt convert reads") {
    CHECK(conversion_hint(CheckpointKind::TorchZip, "m/ckpt.pt").find("minigpt convert m/ckpt.pt OUT.gguf") !=
          std::string::npos);
    CHECK(conversion_hint(CheckpointKind::LlmC, "x.bin").find("llm.c") != std::string::npos);
    CHECK(conversion_hint(CheckpointKind::Gguf, "x.gguf").empty());
    CHECK(conversion_hint(CheckpointKind::Unknown, "x").empty());
    CHECK(conversion_hint(CheckpointKind::Folder, "/nonexistent/folder").empty());  // no config.json
}

TEST_CASE("the GGUF reader says how to convert a checkpoint it was given") {
    TempPath zip("kind.pt");
    {
        std::ofstream f(zip.path, std::ios::binary);
        f << std::string("PK\x03\x04", 4) << std::string(60, '\0');
    }
    const std::string e = gguf_error(zip.path);
    CHECK(e.find(zip.path + ": offset 0: not a GGUF file") != std::string::npos);
    CHECK(e.find("minigpt convert " + zip.path + " OUT.gguf") != std::string::npos);

    const std::string dir = "/tmp/minigpt_test_kind_dir_" + std::to_string(::getpid());
    std::filesystem::create_directories(dir);
    CHECK(checkpoint_kind(dir) == CheckpointKind::Folder);
    CHECK(gguf_error(dir) == dir + ": is a folder, not a GGUF file");
    std::ofstream(dir + "/config.json") << "{}";
    CHECK(gguf_error(dir).find("Hugging Face model folder; convert it to GGUF with: minigpt convert " + dir) !=
          std::string::npos);
    std::filesystem::remove_all(dir);
    CHECK(checkpoint_kind(dir) == CheckpointKind::Missing);
}
