// The tensor names shared by the checkpoint readers, and llm.c's reader.
#include "format/gpt2_checkpoint.h"

#include <cstring>
#include <filesystem>
#include <stdexcept>

#include "util/read_file.h"

namespace minigpt {

std::vector<std::pair<std::string, std::string>> gpt2_tensor_names(int64_t n_layer) {
    std::vector<std::pair<std::string, std::string>> names{{"wte.weight", "token_embd.weight"},
                                                           {"wpe.weight", "position_embd.weight"}};
    const std::pair<const char*, const char*> per_layer[] = {
        {"ln_1", "attn_norm"}, {"attn.c_attn", "attn_qkv"}, {"attn.c_proj", "attn_output"},
        {"ln_2", "ffn_norm"},  {"mlp.c_fc", "ffn_up"},      {"mlp.c_proj", "ffn_down"}};
    for (int64_t i = 0; i < n_layer; ++i)
        for (const auto& [src, dst] : per_layer)
            for (const char* part : {"weight", "bias"})
                names.emplace_back("h." + std::to_string(i) + "." + src + "." + part,
                                   "blk." + std::to_string(i) + "." + dst + "." + part);
    names.emplace_back("ln_f.weight", "output_norm.weight");
    names.emplace_back("ln_f.bias", "output_norm.bias");
    return names;
}

namespace {

constexpr int32_t kLlmcMagic = 20240326;
constexpr uint64_t kLlmcHeaderBytes = 256 * 4;
constexpr int64_t kMaxDim = 1 << 24;  // as llmc_checkpoint.py: far beyond any GPT-2

}  // namespace

GPT2Checkpoint read_llmc_checkpoint(const std::string& path) {
    const std::string head = read_file_range(path, 0, kLlmcHeaderBytes);
    if (head.size() < kLlmcHeaderBytes) throw std::runtime_error(path + ": shorter than llm.c's header");
    int32_t h[8];
    std::memcpy(h, head.data(), sizeof h);
    if (h[0] != kLlmcMagic) throw std::runtime_error(path + ": not llm.c's model magic");
    if (h[1] != 3 && h[1] != 5) throw std::runtime_error(path + ": llm.c version " + std::to_string(h[1]));
    for (int i = 2; i < 8; ++i)
        if (h[i] <= 0 || h[i] > kMaxDim) throw std::runtime_error(path + ": header value out of range");
    GPT2Checkpoint ck;
    ck.kind = "llm.c";
    ck.n_ctx = h[2], ck.vocab_size = h[3], ck.n_layer = h[4], ck.n_head = h[5], ck.n_embd = h[6];
    const int64_t padded = h[7], C = ck.n_embd, L = ck.n_layer;
    if (padded < ck.vocab_size || C % ck.n_head) throw std::runtime_error(path + ": inconsistent header");
    ck.n_inner = 4 * C;
    ck.eps = 1e-5f;  // llm.c's layernorm_forward
    ck.files = {path};
    ck.name = std::filesystem::path(path).stem().string();
    const SourceType type = h[1] == 3 ? SourceType::F32 : SourceType::BF16;
    const uint64_t elem = h[1] == 3 ? 4 : 2;

    // The 16 arrays in file order, each stacked over the layers (llm.c's train_gpt2.py
    // write_model): canonical name, rows and columns of one layer's slice, 2-D or not.
    struct Array { const char* name; int64_t rows, cols; bool per_layer, matrix; };
    const Array arrays[] = {
        {"wte.weight", padded, C, false, true},        {"wpe.weight", ck.n_ctx, C, false, true},
        {"ln_1.weight", 1, C, true, false},            {"ln_1.bias", 1, C, true, false},
        {"attn.c_attn.weight", 3 * C, C, true, true},  {"attn.c_attn.bias", 1, 3 * C, true, false},
        {"attn.c_proj.weight", C, C, true, true},      {"attn.c_proj.bias", 1, C, true, false},
        {"ln_2.weight", 1, C, true, false},            {"ln_2.bias", 1, C, true, false},
        {"mlp.c_fc.weight", 4 * C, C, true, true},     {"mlp.c_fc.bias", 1, 4 * C, true, false},
        {"mlp.c_proj.weight", C, 4 * C, true, true},   {"mlp.c_proj.bias", 1, C, true, false},
        {"ln_f.weight", 1, C, false, false},           {"ln_f.bias", 1, C, false, false}};
    uint64_t pos = kLlmcHeaderBytes;
    for (const Array& a : arrays) {
        const int64_t copies = a.per_layer ? L : 1;
        for (int64_t i = 0; i < copies; ++i) {
            SourceTensor t;
            t.file = 0, t.offset = pos, t.type = type, t.rows = a.rows, t.cols = a.cols, t.is_matrix = a.matrix;
            const std::string name = a.per_layer ? "h." + std::to_string(i) + "." + a.name : a.name;
            if (name == "wte.weight") t.rows = ck.vocab_size;  // the padded rows V..Vp are dropped
            ck.tensors[name] = t;
            pos += uint64_t(a.rows) * uint64_t(a.cols) * elem;
        }
    }
    const uint64_t size = std::filesystem::file_size(path);
    if (size != pos) throw std::runtime_error(path + ": size does not match the header");
    ck.notes.push_back("llm.c version " + std::to_string(h[1]) + " (" + (h[1] == 3 ? "fp32" : "bf16") +
                       "), vocab " + std::to_string(ck.vocab_size) + " (padded rows " + std::to_string(ck.vocab_size) +
                       ".." + std::to_string(padded - 1) + " dropped)");
    return ck;
}

}  // namespace minigpt
