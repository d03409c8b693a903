#include "cli/convert_native.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <set>
#include <stdexcept>
#include <unordered_set>
#include <vector>

#include <unistd.h>

#include <nlohmann/json.hpp>

#include "format/checkpoint_copy.h"
#include "format/checkpoint_kind.h"
#include "format/dtype.h"
#include "format/gguf_writer.h"
#include "format/gpt2_checkpoint.h"
#include "format/quantize.h"
#include "tokenizer/gpt2_files.h"
#include "util/json.h"
#include "util/progress.h"
#include "util/read_file.h"
#include "util/strings.h"
#include "util/utf8.h"

namespace minigpt::cli {

namespace fs = std::filesystem;

namespace {

// llama.cpp's token types (hf_tokenizer.py's TOKEN_*).
constexpr int32_t kNormal = 1, kControl = 3, kUnused = 5;
constexpr const char* kEndOfText = "<|endoftext|>";
constexpr uint64_t kBarMinBytes = 64u << 20;  // convert.py's BAR_MIN_BYTES

// GPT-2 BPE as convert.py's gpt2_vocab writes it (hf_tokenizer.load_gpt2_bpe).
struct Vocab {
    std::vector<std::string> tokens, merges;
    std::vector<int32_t> types;
    int64_t eot = -1;
    std::string description;
};

std::set<std::string> special_tokens(const std::string& folder) {
    std::set<std::string> special{kEndOfText};
    const fs::path cfg_path = fs::path(folder) / "tokenizer_config.json";
    if (!fs::is_regular_file(cfg_path)) return special;
    const Json cfg = json_parse(read_file(cfg_path.string()), cfg_path.string());
    const Json* decoder = cfg.is_object() ? json_find(cfg, "added_tokens_decoder") : nullptr;
    if (decoder && decoder->is_object())
        for (const auto& [id, info] : decoder->items())
            if (info.is_object() && info.contains("special") && info["special"].is_boolean() &&
                info["special"].get<bool>() && info.contains("content") && info["content"].is_string())
                special.insert(info["content"].get<std::string>());
    return special;
}

Vocab gpt2_vocab(const std::string& folder, int64_t n_vocab, bool trim) {
    const std::string vocab_path = (fs::path(folder) / "vocab.json").string();
    const std::string merges_path = (fs::path(folder) / "merges.txt").string();
    if (!fs::is_regular_file(vocab_path) || !fs::is_regular_file(merges_path))
        throw std::runtime_error(folder + ": no vocab.json + merges.txt (the script reads tokenizer.json)");
    const std::set<std::string> special = special_tokens(folder);
    Vocab v;
    std::vector<const std::string*> by_id(size_t(n_vocab), nullptr);
    const auto entries = parse_vocab_json(read_file(vocab_path), vocab_path);
    std::unordered_set<std::string_view> texts;
    texts.reserve(entries.size());
    for (const auto& [text, id] : entries) {
        // A repeated text: Python's dict keeps the last; the script decides.
        if (id >= n_vocab || by_id[size_t(id)] || !texts.insert(text).second)
            throw std::runtime_error(vocab_path + ": an id outside the model, or one given twice");
        by_id[size_t(id)] = &text;
        if (text == kEndOfText) v.eot = id;
    }
    for (int64_t i = 0; i < n_vocab; ++i) {
        const std::string* t = by_id[size_t(i)];
        v.tokens.push_back(t ? *t : "[PAD" + std::to_string(i) + "]");
        v.types.push_back(!t ? kUnused : special.count(*t) ? kControl : kNormal);
    }
    const std::string merges = read_file(merges_path);
    // The script reads merges.txt as text: universal newlines and strict UTF-8.
    if (merges.find('\r') != std::string::npos || !valid_utf8(merges))
        throw std::runtime_error(merges_path + ": carriage returns or invalid UTF-8 (the script decides)");
    v.merges = parse_merges_txt(merges, merges_path);
    if (trim) {  // nanoGPT: trailing ids without a token are embedding padding
        size_t n = v.types.size();
        while (n > 0 && v.types[n - 1] == kUnused) --n;
        v.tokens.resize(n), v.types.resize(n);
    }
    v.description = "GPT-2 BPE from " + folder + ", " + std::to_string(v.tokens.size()) + " tokens, " +
                    std::to_string(v.merges.size()) + " merges";
    return v;
}

// convert.py's choose_type: 1-D tensors, position_embd and non-weights stay f32.
DType choose_type(const std::string& name, bool matrix, int64_t cols, const std::string& outtype) {
    if (outtype == "f32" || !matrix || name == "position_embd.weight" || !ends_with(name, ".weight")) return DType::F32;
    if (outtype == "q8_0" && cols % kQ8_0Block == 0) return DType::Q8_0;
    return DType::F16;
}

const char* type_name(DType t) {  // as convert.py's log names them
    return t == DType::F32 ? "F32" : t == DType::F16 ? "F16" : "Q8_0";
}

std::string ne_text(const std::vector<int64_t>& ne) {
    std::string s = "[";
    for (size_t i = 0; i < ne.size(); ++i) s += (i ? ", " : "") + std::to_string(ne[i]);
    return s + "]";
}

GPT2Checkpoint read_checkpoint(const ConvertRequest& req, bool& trim_vocab, std::string& tokenizer_folder) {
    const CheckpointKind kind = checkpoint_kind(req.src);
    trim_vocab = false;
    switch (kind) {
        case CheckpointKind::Folder: {
            const std::string folder = req.src;
            tokenizer_folder = folder;
            if (fs::is_regular_file(fs::path(folder) / "tokenizer.model"))
                throw std::runtime_error("a SentencePiece tokenizer: the script converts it");
            return read_hf_safetensors(folder);
        }
        case CheckpointKind::LlmC:
            return read_llmc_checkpoint(req.src);
        case CheckpointKind::TorchZip: {
            GPT2Checkpoint ck = read_nanogpt_checkpoint(req.src);
            if (!req.tokenizer_dir_given) {  // nanogpt_checkpoint.find_meta's places
                const fs::path here = fs::absolute(req.src).parent_path();
                std::vector<fs::path> metas{here / "meta.pkl"};
                if (!ck.dataset.empty() && fs::path(ck.dataset).filename() == ck.dataset)
                    metas.insert(metas.end(), {here / "data" / ck.dataset / "meta.pkl",
                                               here.parent_path() / "data" / ck.dataset / "meta.pkl",
                                               fs::path("data") / ck.dataset / "meta.pkl"});
                for (const fs::path& m : metas)
                    if (fs::is_regular_file(m))
                        throw std::runtime_error(m.string() + ": a character vocabulary, which the script reads");
            }
            trim_vocab = true;
            return ck;
        }
        default:
            throw std::runtime_error(std::string("a ") + checkpoint_kind_name(kind) + ": the script converts it");
    }
}

}  // namespace

bool convert_natively(const ConvertRequest& req, std::string& why_not) {
    try {
        if (fs::is_directory(req.out)) throw std::runtime_error(req.out + " is a directory");
        bool trim = false;
        std::string tokenizer_folder;
        GPT2Checkpoint ck = read_checkpoint(req, trim, tokenizer_folder);
        if (tokenizer_folder.empty()) tokenizer_folder = req.tokenizer_dir;
        CheckpointCopier source(ck.files);
        if (auto head = ck.tensors.find("lm_head.weight");
            head != ck.tensors.end() && source.same_values(head->second, ck.tensors.at("wte.weight")))
            ck.tensors.erase(head);  // tied: the head is the embedding matrix
        const bool untied = ck.tensors.count("lm_head.weight") > 0;

        auto names = gpt2_tensor_names(ck.n_layer);
        names.emplace_back(untied ? "lm_head.weight" : "wte.weight", "output.weight");
        std::vector<TensorPlan> plan;
        uint64_t total = 0;
        auto start_copier = [&] {
            for (const auto& [canon, gguf_name] : names) {
                const SourceTensor& t = ck.tensors.at(canon);
                plan.push_back(TensorPlan{t, choose_type(gguf_name, t.is_matrix, t.cols, req.outtype)});
                total += plan.back().bytes();
            }
            source.start(plan);
        };
        // The tensors to write depend on the vocabulary only where nanoGPT's padding rows
        // are dropped; otherwise the copier checks and converts them while the
        // vocabulary is read (~25 ms of a ~200 ms conversion of GPT-2 124M).
        if (!trim) start_copier();
        Vocab vocab = gpt2_vocab(tokenizer_folder, ck.vocab_size, trim);
        const int64_t n_rows = int64_t(vocab.tokens.size());
        std::vector<std::string> notes = ck.notes;
        if (trim && n_rows < ck.vocab_size) {
            for (const char* k : {"wte.weight", "lm_head.weight"})
                if (ck.tensors.count(k)) ck.tensors[k].rows = n_rows;
            notes.insert(notes.begin(), "dropped embedding rows " + std::to_string(n_rows) + ".." +
                                            std::to_string(ck.vocab_size - 1) +
                                            ": padding, no token has those ids (the output layer keeps the "
                                            "tokenizer's " + std::to_string(n_rows) + " rows)");
        }

        auto log = [&](const std::string& msg) {
            if (!req.quiet) std::fprintf(stderr, "convert: %s\n", msg.c_str());
        };
        std::string files;
        for (const std::string& f : ck.files) files += (files.empty() ? "" : ", ") + f;
        log("read " + files + " (" + ck.kind + "): " + std::to_string(ck.n_layer) + " layers, " +
            std::to_string(ck.n_head) + " heads, n_embd " + std::to_string(ck.n_embd) + ", n_ctx " +
            std::to_string(ck.n_ctx) + ", vocab " + std::to_string(n_rows) + (untied ? ", untied lm_head" : ""));
        for (const std::string& n : notes) log(n);
        log("tokenizer: " + vocab.description);

        GGUFWriter w;
        w.set_string("general.architecture", "gpt2");
        w.set_string("general.type", "model");
        w.set_string("general.name", req.name.empty() ? ck.name : req.name);
        w.set_u32("gpt2.context_length", uint32_t(ck.n_ctx));
        w.set_u32("gpt2.embedding_length", uint32_t(ck.n_embd));
        w.set_u32("gpt2.feed_forward_length", uint32_t(ck.n_inner));
        w.set_u32("gpt2.block_count", uint32_t(ck.n_layer));
        w.set_u32("gpt2.attention.head_count", uint32_t(ck.n_head));
        w.set_f32("gpt2.attention.layer_norm_epsilon", ck.eps);
        w.set_u32("general.file_type", llama_ftype_of(parse_quant_type(req.outtype)));
        w.set_u32("general.quantization_version", 2);
        w.set_string("tokenizer.ggml.model", "gpt2");
        w.set_string("tokenizer.ggml.pre", "gpt-2");
        w.set_string_array("tokenizer.ggml.tokens", vocab.tokens);
        w.set_i32_array("tokenizer.ggml.token_type", vocab.types);
        w.set_string_array("tokenizer.ggml.merges", vocab.merges);
        if (vocab.eot >= 0) {
            w.set_u32("tokenizer.ggml.bos_token_id", uint32_t(vocab.eot));
            w.set_u32("tokenizer.ggml.eos_token_id", uint32_t(vocab.eot));
        }
        w.set_bool("tokenizer.ggml.add_bos_token", false);

        if (trim) start_copier();
        const bool bar = !req.quiet && ::isatty(STDERR_FILENO) && total >= kBarMinBytes;
        std::optional<ProgressBar> progress;
        if (!req.quiet) progress.emplace("convert", int64_t(std::max<uint64_t>(total, 1)), stderr, bar);
        uint64_t written = 0;
        for (size_t i = 0; i < names.size(); ++i) {
            const std::string gguf_name = names[i].second;
            const SourceTensor& t = plan[i].tensor;
            const DType type = plan[i].type;
            const std::vector<int64_t> ne = t.is_matrix ? std::vector<int64_t>{t.cols, t.rows}
                                                        : std::vector<int64_t>{t.cols};
            w.add_tensor(gguf_name, type, ne, [&, i, gguf_name, type, ne](OutputFile& out) {
                if (progress && !bar) {
                    char line[160];
                    std::snprintf(line, sizeof line, "[%3zu/%zu] %-28s %-4s ne=%s", i + 1, names.size(),
                                  gguf_name.c_str(), type_name(type), ne_text(ne).c_str());
                    log(line);
                }
                source.write(i, out);
                written += plan[i].bytes();
                if (progress) progress->update(int64_t(written), gguf_name);
            });
        }
        // The transposed tensors are written, and every value checked, before the file is
        // committed: a throw leaves no file.
        w.write(req.out, 32, [&] { source.finish(); });
        if (progress) progress->finish(std::to_string(total >> 20) + " MiB of tensors");
        log("wrote " + req.out + " (" + std::to_string(fs::file_size(req.out)) + " bytes)");
        return true;
    } catch (const std::exception& e) {
        why_not = e.what();
        return false;
    }
}

}  // namespace minigpt::cli
