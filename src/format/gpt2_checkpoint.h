// GPT-2 checkpoints of other projects, read natively for `minigpt convert`'s fast
// path: where every tensor lies in which file, in which type and layout, and the
// hyperparameters. Nothing is read into memory here; the converter streams the
// bytes (cli/convert_native.cpp).
//
// scripts/convert.py is the converter of record (numpy only, every kind of
// checkpoint, every error message); these readers cover the common kinds
// (llm.c .bin, Hugging Face safetensors folders, nanoGPT's ckpt.pt) and throw
// on anything else, after which `minigpt convert` runs the script, which either
// converts it or names the problem. Their output is checked byte for byte
// against the script's (tests/e2e/test_convert_native.py).
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace minigpt {

// Element types a checkpoint stores weights in.
enum class SourceType { F32, F16, BF16 };

struct SourceTensor {
    int file = -1;            // index into GPT2Checkpoint::files; -1: all zeros (nanoGPT's bias=False)
    uint64_t offset = 0;      // byte offset of the first element in that file
    SourceType type = SourceType::F32;
    int64_t rows = 1, cols = 0;  // as GGUF wants it: rows of `cols` elements (a 1-D tensor is one row)
    bool transposed = false;  // stored as (cols, rows): Hugging Face's Conv1D weights
    bool is_matrix = false;   // 2-D (its GGUF ne is {cols, rows}), else 1-D ({cols})
    uint64_t bytes() const { return uint64_t(rows) * uint64_t(cols) * (type == SourceType::F32 ? 4 : 2); }
};

struct GPT2Checkpoint {
    std::string kind;   // "Hugging Face", "nanoGPT", "llm.c"
    std::string name;   // general.name: the folder's or file's name
    int64_t n_layer = 0, n_head = 0, n_embd = 0, n_ctx = 0, n_inner = 0;
    int64_t vocab_size = 0;  // embedding rows in the checkpoint (before any padding is dropped)
    float eps = 1e-5f;
    std::vector<std::string> files;  // the files read, in the order tensors refer to them
    // Canonical (Hugging Face, no "transformer.") names: wte.weight, h.0.attn.c_attn.weight, ...
    // lm_head.weight only for an untied head.
    std::map<std::string, SourceTensor> tensors;
    std::vector<std::string> notes;  // what the log says about the conversion (the script's words)
    std::string dataset;  // nanoGPT: train.py's config["dataset"], where sample.py looks for meta.pkl
};

// The canonical names of a GPT-2 model's tensors in GGUF order, with the GGUF name of
// each (token_embd.weight, blk.0.attn_norm.weight, ...); lm_head.weight last.
std::vector<std::pair<std::string, std::string>> gpt2_tensor_names(int64_t n_layer);

// llm.c's gpt2_124M.bin (version 3 fp32, 5 bf16); throws on anything it does not read.
GPT2Checkpoint read_llmc_checkpoint(const std::string& path);
// A Hugging Face folder with config.json and model.safetensors (or sharded:
// model.safetensors.index.json). `file`: read only that .safetensors file of it.
GPT2Checkpoint read_hf_safetensors(const std::string& folder, const std::string& file = "");
// nanoGPT's ckpt.pt (torch.save of train.py's dict).
GPT2Checkpoint read_nanogpt_checkpoint(const std::string& path);

}  // namespace minigpt
