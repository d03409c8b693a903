// Hugging Face GPT-2 folders read natively: config.json, model.safetensors (or its
// shards), validated as scripts/hf_checkpoint.py validates them. Anything that
// reader would refuse, or that only it reads (pytorch_model.bin, float64 weights),
// throws here, and `minigpt convert` hands the folder to the script.
#include <algorithm>
#include <filesystem>
#include <set>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "format/gpt2_checkpoint.h"
#include "format/le_bytes.h"
#include "util/json.h"
#include "util/read_file.h"
#include "util/strings.h"

namespace minigpt {

namespace fs = std::filesystem;

namespace {

constexpr uint64_t kMaxHeader = 100u << 20;  // the reference safetensors library's limit

// A positive integer member under one of several names (GPT2Config's need()).
int64_t positive(const Json& cfg, std::initializer_list<const char*> keys, const std::string& where) {
    for (const char* k : keys) {
        const Json* v = json_find(cfg, k);
        if (!v || v->is_null()) continue;
        if (!v->is_number_integer() || v->get<int64_t>() <= 0) throw std::runtime_error(where + ": bad " + k);
        return v->get<int64_t>();
    }
    throw std::runtime_error(where + ": missing " + *keys.begin());
}

// The value of an optional member, or `fallback` when absent or null.
template <typename T>
T member_or(const Json& cfg, const char* key, T fallback) {
    const Json* v = json_find(cfg, key);
    return v && !v->is_null() ? v->get<T>() : fallback;
}

void read_config(const std::string& folder, GPT2Checkpoint& ck) {
    const std::string path = (fs::path(folder) / "config.json").string();
    const Json cfg = json_parse(read_file(path), path);
    if (!cfg.is_object()) throw std::runtime_error(path + ": not an object");
    if (member_or<std::string>(cfg, "model_type", "gpt2") != "gpt2") throw std::runtime_error(path + ": not gpt2");
    if (const Json* archs = json_find(cfg, "architectures"); archs && !archs->is_null()) {
        bool lm = false;
        for (const Json& a : json_array(*archs, path))
            lm |= a.is_string() && (a == "GPT2LMHeadModel" || a == "GPT2Model");
        if (!lm && !archs->empty()) throw std::runtime_error(path + ": not GPT2LMHeadModel");
    }
    ck.n_layer = positive(cfg, {"n_layer", "num_hidden_layers"}, path);
    ck.n_head = positive(cfg, {"n_head", "num_attention_heads"}, path);
    ck.n_embd = positive(cfg, {"n_embd", "hidden_size"}, path);
    ck.n_ctx = positive(cfg, {"n_positions", "n_ctx", "max_position_embeddings"}, path);
    ck.vocab_size = positive(cfg, {"vocab_size"}, path);
    const Json* inner = json_find(cfg, "n_inner");
    ck.n_inner = inner && inner->is_number_integer() && inner->get<int64_t>() > 0 ? inner->get<int64_t>() : 4 * ck.n_embd;
    if (inner && !inner->is_null() && !inner->is_number_integer()) throw std::runtime_error(path + ": n_inner");
    const Json* eps = json_find(cfg, "layer_norm_epsilon");
    ck.eps = eps && eps->is_number() ? eps->get<float>() : 1e-5f;
    if (eps && !eps->is_number()) throw std::runtime_error(path + ": layer_norm_epsilon");
    const std::string act = member_or<std::string>(cfg, "activation_function", "gelu_new");
    if (ck.n_embd % ck.n_head || (act != "gelu_new" && act != "gelu_pytorch_tanh") ||
        member_or<bool>(cfg, "add_cross_attention", false) || !member_or<bool>(cfg, "scale_attn_weights", true) ||
        member_or<bool>(cfg, "scale_attn_by_inverse_layer_idx", false))
        throw std::runtime_error(path + ": a GPT-2 variant the script handles");
}

// Canonical name -> shape as Hugging Face stores it (Conv1D weights (in, out)).
std::map<std::string, std::vector<int64_t>> hf_shapes(const GPT2Checkpoint& c) {
    std::map<std::string, std::vector<int64_t>> s{{"wte.weight", {c.vocab_size, c.n_embd}},
                                                  {"wpe.weight", {c.n_ctx, c.n_embd}},
                                                  {"ln_f.weight", {c.n_embd}}, {"ln_f.bias", {c.n_embd}}};
    for (int64_t i = 0; i < c.n_layer; ++i) {
        const std::string p = "h." + std::to_string(i) + ".";
        const int64_t C = c.n_embd, F = c.n_inner;
        s[p + "ln_1.weight"] = {C}, s[p + "ln_1.bias"] = {C}, s[p + "ln_2.weight"] = {C}, s[p + "ln_2.bias"] = {C};
        s[p + "attn.c_attn.weight"] = {C, 3 * C}, s[p + "attn.c_attn.bias"] = {3 * C};
        s[p + "attn.c_proj.weight"] = {C, C}, s[p + "attn.c_proj.bias"] = {C};
        s[p + "mlp.c_fc.weight"] = {C, F}, s[p + "mlp.c_fc.bias"] = {F};
        s[p + "mlp.c_proj.weight"] = {F, C}, s[p + "mlp.c_proj.bias"] = {C};
    }
    s["lm_head.weight"] = {c.vocab_size, c.n_embd};
    return s;
}

bool is_conv1d_weight(const std::string& canon) {
    for (const char* m : {".attn.c_attn.weight", ".attn.c_proj.weight", ".mlp.c_fc.weight", ".mlp.c_proj.weight"})
        if (ends_with(canon, m)) return true;
    return false;
}

// One .safetensors file's tensors into ck (file index `file`), validated as
// hf_checkpoint.read_safetensors + load_gpt2 do.
void read_safetensors_file(const std::string& path, int file, GPT2Checkpoint& ck,
                           const std::map<std::string, std::vector<int64_t>>& shapes) {
    const uint64_t size = fs::file_size(path);
    if (size < 8) throw std::runtime_error(path + ": too short");
    const std::string len_bytes = read_file_range(path, 0, 8);
    if (len_bytes.size() < 8) throw std::runtime_error(path + ": too short");
    const uint64_t n = le64(reinterpret_cast<const uint8_t*>(len_bytes.data()));
    if (n > kMaxHeader || 8 + n > size) throw std::runtime_error(path + ": bad header length");
    const std::string text = read_file_range(path, 8, n);
    // Duplicate keys: the parsed object keeps one, the script refuses the file.
    size_t top_keys = 0;
    Json header;
    try {
        header = nlohmann::ordered_json::parse(text, [&](int depth, nlohmann::ordered_json::parse_event_t e, Json&) {
            if (depth == 1 && e == nlohmann::ordered_json::parse_event_t::key) ++top_keys;
            return true;
        });
    } catch (const nlohmann::ordered_json::exception& e) {
        throw std::runtime_error(path + ": header is not valid JSON (" + e.what() + ")");
    }
    if (!header.is_object() || header.size() != top_keys) throw std::runtime_error(path + ": bad header");
    const uint64_t data_start = 8 + n, data_len = size - data_start;
    struct Span { uint64_t begin, end; };
    std::vector<Span> spans;
    for (const auto& [name, info] : header.items()) {
        if (name == "__metadata__") {
            if (!info.is_object()) throw std::runtime_error(path + ": __metadata__");
            for (const auto& [k, v] : info.items())
                if (!v.is_string()) throw std::runtime_error(path + ": __metadata__");
            continue;
        }
        if (!info.is_object() || info.size() != 3 || !info.contains("dtype") || !info.contains("shape") ||
            !info.contains("data_offsets"))
            throw std::runtime_error(path + ": entry " + name);
        const Json& dt = info["dtype"];
        const Json& shape = info["shape"];
        const Json& off = info["data_offsets"];
        if (!dt.is_string() || !shape.is_array() || !off.is_array() || off.size() != 2 ||
            !off[0].is_number_unsigned() || !off[1].is_number_unsigned())
            throw std::runtime_error(path + ": entry " + name);
        const std::string dtype = dt.get<std::string>();
        SourceTensor t;
        uint64_t elem;
        if (dtype == "F32") t.type = SourceType::F32, elem = 4;
        else if (dtype == "F16") t.type = SourceType::F16, elem = 2;
        else if (dtype == "BF16") t.type = SourceType::BF16, elem = 2;
        else throw std::runtime_error(path + ": dtype " + dtype + " (the script reads it)");
        std::vector<int64_t> dims;
        uint64_t count = 1;
        for (const Json& d : shape) {
            if (!d.is_number_unsigned() || d.get<uint64_t>() > (1ull << 40)) throw std::runtime_error(path + ": shape");
            dims.push_back(d.get<int64_t>());
            count *= d.get<uint64_t>();
            if (count > (1ull << 40)) throw std::runtime_error(path + ": shape");
        }
        const uint64_t begin = off[0].get<uint64_t>(), end = off[1].get<uint64_t>();
        if (begin > end || end > data_len || end - begin != count * elem) throw std::runtime_error(path + ": offsets");
        spans.push_back({begin, end});

        const std::string canon = name.rfind("transformer.", 0) == 0 ? name.substr(12) : name;
        if (ends_with(canon, ".attn.bias") || ends_with(canon, ".attn.masked_bias")) continue;
        const auto want = shapes.find(canon);
        if (want == shapes.end() || want->second != dims) throw std::runtime_error(path + ": tensor " + name);
        if (ck.tensors.count(canon)) throw std::runtime_error(path + ": tensor " + canon + " twice");
        t.file = file;
        t.offset = data_start + begin;
        t.is_matrix = dims.size() == 2;
        t.transposed = is_conv1d_weight(canon);
        t.rows = dims.size() == 2 ? (t.transposed ? dims[1] : dims[0]) : 1;
        t.cols = dims.size() == 2 ? (t.transposed ? dims[0] : dims[1]) : dims[0];
        ck.tensors[canon] = t;
    }
    std::sort(spans.begin(), spans.end(), [](const Span& a, const Span& b) { return a.begin < b.begin; });
    uint64_t pos = 0;
    for (const Span& s : spans) {
        if (s.begin != pos) throw std::runtime_error(path + ": gap or overlap in the data buffer");
        pos = s.end;
    }
    if (pos != data_len) throw std::runtime_error(path + ": unused bytes in the data buffer");
}

}  // namespace

namespace {

GPT2Checkpoint read_folder(const std::string& folder, const std::string& file) {
    GPT2Checkpoint ck;
    ck.kind = "Hugging Face";
    read_config(folder, ck);
    ck.name = fs::path(fs::absolute(folder).lexically_normal()).filename().string();
    if (ck.name.empty()) ck.name = fs::absolute(folder).lexically_normal().parent_path().filename().string();
    const auto shapes = hf_shapes(ck);
    const fs::path single = fs::path(folder) / "model.safetensors";
    const fs::path index = fs::path(folder) / "model.safetensors.index.json";
    if (!file.empty()) {
        ck.files = {file};
    } else if (fs::is_regular_file(single)) {
        ck.files = {single.string()};
    } else if (fs::is_regular_file(index)) {
        const Json idx = json_parse(read_file(index.string()), index.string());
        std::set<std::string> shards;
        for (const auto& [k, v] : json_member(idx, "weight_map", index.string()).items()) {
            const std::string shard = json_string(v, index.string());
            if (fs::path(shard).filename() != shard) throw std::runtime_error(index.string() + ": shard name");
            shards.insert(shard);
        }
        for (const std::string& s : shards) ck.files.push_back((fs::path(folder) / s).string());
    } else {
        throw std::runtime_error(folder + ": no model.safetensors (the script reads pytorch_model.bin)");
    }
    for (size_t i = 0; i < ck.files.size(); ++i) read_safetensors_file(ck.files[i], int(i), ck, shapes);
    for (const auto& [name, shape] : shapes)
        if (name != "lm_head.weight" && !ck.tensors.count(name)) throw std::runtime_error(folder + ": missing " + name);
    return ck;
}

}  // namespace

GPT2Checkpoint read_hf_safetensors(const std::string& folder, const std::string& file) {
    try {
        return read_folder(folder, file);
    } catch (const nlohmann::ordered_json::exception& e) {  // a value of another JSON type than expected
        throw std::runtime_error(folder + ": " + e.what());
    }
}

}  // namespace minigpt
