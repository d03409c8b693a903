// nanoGPT's ckpt.pt read natively (scripts/nanogpt_checkpoint.py's load_nanogpt):
// torch.save of train.py's dict {model, model_args, config, ...}; nn.Linear
// weights are (out, in), GGUF's layout, so nothing is transposed. Throws on
// anything the script would refuse or treats specially, and the script decides.
#include <filesystem>
#include <stdexcept>
#include <tuple>

#include "format/gpt2_checkpoint.h"
#include "format/mapped_file.h"
#include "format/torch_archive.h"
#include "util/strings.h"

namespace minigpt {

namespace {

int64_t positive_arg(const PickleValue& args, const char* key, const std::string& path) {
    const PickleValue* v = args.get(key);
    if (!v || v->kind != PickleValue::Kind::Int || v->i <= 0)
        throw std::runtime_error(path + ": model_args['" + key + "'] must be a positive integer");
    return v->i;
}

std::string canonical(std::string name) {
    for (const char* prefix : {"_orig_mod.", "transformer."})
        if (name.rfind(prefix, 0) == 0) name = name.substr(std::string(prefix).size());
    return name;
}

}  // namespace

GPT2Checkpoint read_nanogpt_checkpoint(const std::string& path) {
    const MappedFile file(path);
    const PickleValue ck_value = TorchArchive::load(path, file.data(), file.size());
    const PickleValue* model = ck_value.get("model");
    const PickleValue* args = ck_value.get("model_args");
    if (!model || model->kind != PickleValue::Kind::Dict || !args || args->kind != PickleValue::Kind::Dict)
        throw std::runtime_error(path + ": not a nanoGPT checkpoint");
    GPT2Checkpoint ck;
    ck.kind = "nanoGPT";
    ck.n_layer = positive_arg(*args, "n_layer", path);
    ck.n_head = positive_arg(*args, "n_head", path);
    ck.n_embd = positive_arg(*args, "n_embd", path);
    ck.n_ctx = positive_arg(*args, "block_size", path);
    ck.vocab_size = positive_arg(*args, "vocab_size", path);
    ck.n_inner = 4 * ck.n_embd;
    ck.eps = 1e-5f;  // model.py's LayerNorm
    if (ck.n_embd % ck.n_head) throw std::runtime_error(path + ": n_embd not divisible by n_head");
    bool bias = true;  // bool(args.get("bias", True)): only plain booleans and ints here
    if (const PickleValue* b = args->get("bias")) {
        if (b->kind == PickleValue::Kind::Bool) bias = b->b;
        else if (b->kind == PickleValue::Kind::Int) bias = b->i != 0;
        else throw std::runtime_error(path + ": model_args['bias'] of another type");
    }
    if (const PickleValue* cfg = ck_value.get("config"); cfg && cfg->kind == PickleValue::Kind::Dict)
        if (const PickleValue* d = cfg->get("dataset"); d && d->kind == PickleValue::Kind::String) ck.dataset = d->s;

    const int64_t C = ck.n_embd, F = ck.n_inner;
    // Canonical name -> (rows, cols) of nn.Linear's (out, in); cols only for 1-D tensors.
    std::map<std::string, std::pair<int64_t, int64_t>> shapes{
        {"wte.weight", {ck.vocab_size, C}}, {"wpe.weight", {ck.n_ctx, C}}, {"lm_head.weight", {ck.vocab_size, C}},
        {"ln_f.weight", {0, C}}, {"ln_f.bias", {0, C}}};
    for (int64_t i = 0; i < ck.n_layer; ++i) {
        const std::string p = "h." + std::to_string(i) + ".";
        for (const auto& [name, out, in] : {std::tuple{"attn.c_attn", 3 * C, C}, std::tuple{"attn.c_proj", C, C},
                                             std::tuple{"mlp.c_fc", F, C}, std::tuple{"mlp.c_proj", C, F}}) {
            shapes[p + name + ".weight"] = {out, in};
            shapes[p + name + ".bias"] = {0, out};
        }
        for (const char* ln : {"ln_1", "ln_2"}) shapes[p + ln + ".weight"] = shapes[p + ln + ".bias"] = {0, C};
    }
    for (const auto& [key, value] : model->entries) {
        if (key.kind != PickleValue::Kind::String || value.kind != PickleValue::Kind::Tensor)
            throw std::runtime_error(path + ": a model entry that is not a named tensor");
        const TorchTensor& t = *value.tensor;
        const std::string canon = canonical(key.s);
        if (ends_with(canon, ".attn.bias") && t.shape.size() == 4)
            continue;  // the causal-mask buffer of model.py's slow attention path
        const auto want = shapes.find(canon);
        if (want == shapes.end()) throw std::runtime_error(path + ": unexpected tensor " + key.s);
        const auto [rows, cols] = want->second;
        const std::vector<int64_t> dims = rows ? std::vector<int64_t>{rows, cols} : std::vector<int64_t>{cols};
        if (t.shape != dims) throw std::runtime_error(path + ": tensor " + key.s + " has another shape");
        SourceTensor s;
        if (t.dtype == "float32") s.type = SourceType::F32;
        else if (t.dtype == "float16") s.type = SourceType::F16;
        else if (t.dtype == "bfloat16") s.type = SourceType::BF16;
        else throw std::runtime_error(path + ": tensor " + key.s + " of dtype " + t.dtype + " (the script reads it)");
        if (!t.contiguous()) throw std::runtime_error(path + ": tensor " + key.s + " is not contiguous");
        if (ck.tensors.count(canon)) throw std::runtime_error(path + ": tensor " + canon + " twice");
        s.file = 0;
        s.offset = t.data_offset + uint64_t(t.storage_offset) * t.element_size();
        s.rows = rows ? rows : 1, s.cols = cols, s.is_matrix = rows != 0;
        ck.tensors[canon] = s;
    }
    for (const auto& [canon, shape] : shapes) {
        if (canon == "lm_head.weight" || ck.tensors.count(canon)) continue;
        const bool is_bias = ends_with(canon, ".bias");
        if (!is_bias || bias) throw std::runtime_error(path + ": missing tensor " + canon);
        SourceTensor zeros;  // bias=False: GGUF's gpt2 graph has biases, all zero here
        zeros.cols = shape.second;
        ck.tensors[canon] = zeros;
    }
    ck.files = {path};
    ck.name = std::filesystem::path(path).stem().string();
    if (ck.name == "ckpt")  // nanoGPT's fixed file name: the run's folder says more
        if (const auto dir = std::filesystem::absolute(path).parent_path().filename().string(); !dir.empty())
            ck.name = dir;
    if (!bias) ck.notes.push_back("bias=False: zero biases written (GGUF's gpt2 graph has them)");
    ck.notes.push_back("nanoGPT trains with the exact erf GELU; GGUF's gpt2 graph (minigpt, llama.cpp) uses GPT-2's "
                       "tanh form, within 4.8e-4 of it per activation (at x = 2.7)");
    return ck;
}

}  // namespace minigpt
