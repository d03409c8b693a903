#include "format/checkpoint_kind.h"

#include <cstdio>
#include <cstring>
#include <sys/stat.h>

#include "format/le_bytes.h"

namespace minigpt {

namespace {

constexpr uint32_t kLlmcModelMagic = 20240326;  // llm.c train_gpt2.py write_model, header[0]
// safetensors' own reader refuses headers over 100 MB; a real one is far smaller.
constexpr uint64_t kMaxSafetensorsHeader = 100u << 20;

bool is_file(const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

}  // namespace

CheckpointKind checkpoint_kind_of_bytes(const uint8_t* data, size_t size) {
    if (size >= 4 && std::memcmp(data, "GGUF", 4) == 0) return CheckpointKind::Gguf;
    if (size >= 4 && std::memcmp(data, "PK\x03\x04", 4) == 0) return CheckpointKind::TorchZip;
    if (size >= 4 && le32(data) == kLlmcModelMagic) return CheckpointKind::LlmC;
    if (size >= 9 && data[8] == '{') {
        const uint64_t n = le64(data);
        if (n >= 2 && n <= kMaxSafetensorsHeader) return CheckpointKind::Safetensors;
    }
    return CheckpointKind::Unknown;
}

CheckpointKind checkpoint_kind(const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return CheckpointKind::Missing;
    if (S_ISDIR(st.st_mode)) return CheckpointKind::Folder;
    uint8_t head[16] = {0};
    size_t n = 0;
    if (FILE* f = std::fopen(path.c_str(), "rb")) {
        n = std::fread(head, 1, sizeof head, f);
        std::fclose(f);
    }
    return checkpoint_kind_of_bytes(head, n);
}

const char* checkpoint_kind_name(CheckpointKind kind) {
    switch (kind) {
        case CheckpointKind::Missing: return "missing";
        case CheckpointKind::Folder: return "a folder";
        case CheckpointKind::Gguf: return "a GGUF file";
        case CheckpointKind::TorchZip: return "a PyTorch zip archive (torch.save: nanoGPT's ckpt.pt, pytorch_model.bin)";
        case CheckpointKind::LlmC: return "an llm.c model checkpoint (magic 20240326)";
        case CheckpointKind::Safetensors: return "a safetensors file";
        case CheckpointKind::Unknown: break;
    }
    return "not a checkpoint minigpt knows";
}

std::string conversion_hint(CheckpointKind kind, const std::string& path) {
    std::string what;
    switch (kind) {
        case CheckpointKind::Folder:
            if (!is_file(path + "/config.json")) return "";
            what = "a Hugging Face model folder";
            break;
        case CheckpointKind::TorchZip:
        case CheckpointKind::LlmC:
        case CheckpointKind::Safetensors:
            what = checkpoint_kind_name(kind);
            break;
        default:
            return "";
    }
    return "this is " + what + "; convert it to GGUF with: minigpt convert " + path + " OUT.gguf";
}

}  // namespace minigpt
