// What a model path holds, from what it is (file or folder) and its first bytes:
// a GGUF file, or one of the checkpoints `minigpt convert` turns into one. Used
// by `minigpt convert` to say what it is about to convert, and by the GGUF
// reader to say how to convert a file that is not GGUF instead of only "bad magic".
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace minigpt {

enum class CheckpointKind {
    Missing,      // no such path
    Folder,       // a folder (a Hugging Face model folder when it has config.json)
    Gguf,         // "GGUF"
    TorchZip,     // "PK\3\4": torch.save's zip (nanoGPT's ckpt.pt, pytorch_model.bin)
    LlmC,         // int32 20240326: an llm.c model (gpt2_124M.bin)
    Safetensors,  // u64 header length, then a JSON object
    Unknown,
};

// The kind of a file from its first bytes (pass at least 16 when the file has them).
CheckpointKind checkpoint_kind_of_bytes(const uint8_t* data, size_t size);

// The kind of a path: Missing, Folder, or the kind of its first bytes.
CheckpointKind checkpoint_kind(const std::string& path);

// "a PyTorch zip archive (torch.save: nanoGPT's ckpt.pt, pytorch_model.bin)", ...
const char* checkpoint_kind_name(CheckpointKind kind);

// For a kind minigpt convert reads: "<what it is>; convert it to GGUF with:
// minigpt convert PATH OUT.gguf". Empty for the others.
std::string conversion_hint(CheckpointKind kind, const std::string& path);

}  // namespace minigpt
