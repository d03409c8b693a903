#include "runtime/model.h"

#include <stdexcept>

namespace minigpt {

namespace {

// Limits that keep every size product far from overflow; real GPT-2s are far below.
constexpr int64_t kMaxDim = int64_t(1) << 20;
constexpr int64_t kMaxVocab = int64_t(1) << 24;

class Loader {
public:
    Loader(const GGUFFile& f, const Config& c) : f_(f), c_(c) {}

    [[noreturn]] void fail(const std::string& what) const { throw std::runtime_error(f_.path() + ": " + what); }

    const GGUFTensor& get(const std::string& name) const {
        const GGUFTensor* t = f_.find_tensor(name);
        if (!t) fail("missing tensor \"" + name + "\" (is this a GPT-2 model converted with llama.cpp's tensor names?)");
        return *t;
    }

    void check_shape(const GGUFTensor& t, std::initializer_list<int64_t> want) const {
        bool ok = int(want.size()) == t.n_dims;
        int i = 0;
        for (int64_t w : want) ok = ok && t.ne[i++] == w;
        if (!ok) {
            std::string w = "[";
            i = 0;
            for (int64_t x : want) w += (i++ ? ", " : "") + std::to_string(x);
            fail("tensor \"" + t.name + "\" has shape " + t.shape_string() + ", expected " + w +
                 "] from the hyperparameters (n_embd=" + std::to_string(c_.n_embd) + ", n_ff=" +
                 std::to_string(c_.n_ff) + ", n_vocab=" + std::to_string(c_.n_vocab) + ", n_ctx=" +
                 std::to_string(c_.n_ctx) + ")");
        }
    }

    Matrix matrix(const std::string& name, int64_t rows, int64_t cols) const {
        const GGUFTensor& t = get(name);
        check_shape(t, {cols, rows});
        return Matrix{t.type, rows, cols, t.data};
    }

    Vector vector(const std::string& name, int64_t n) const {
        const GGUFTensor& t = get(name);
        check_shape(t, {n});
        if (t.type != DType::F32)
            fail("tensor \"" + t.name + "\" has type " + dtype_name(t.type) + ", expected f32 (norms and biases stay f32)");
        return Vector{n, reinterpret_cast<const float*>(t.data)};
    }

private:
    const GGUFFile& f_;
    const Config& c_;
};

int64_t dim(const GGUFFile& f, const std::string& key) {
    uint64_t v = f.get_uint(key);
    if (v == 0 || v > uint64_t(kMaxDim))
        throw std::runtime_error(f.path() + ": metadata \"" + key + "\" = " + std::to_string(v) +
                                 " is out of range (1.." + std::to_string(kMaxDim) + ")");
    return int64_t(v);
}

}  // namespace

std::unique_ptr<Model> Model::load(const std::string& path) { return load(std::make_unique<GGUFFile>(path)); }

std::unique_ptr<Model> Model::load(std::unique_ptr<GGUFFile> file) {
    auto m = std::unique_ptr<Model>(new Model());
    m->gguf_ = std::move(file);
    const GGUFFile& f = *m->gguf_;
    const std::string& path = f.path();

    const std::string arch = f.get_string("general.architecture");
    if (arch != "gpt2")
        throw std::runtime_error(path + ": architecture is \"" + arch + "\", minigpt runs \"gpt2\" models only");

    Config& c = m->config_;
    c.n_ctx = dim(f, "gpt2.context_length");
    c.n_embd = dim(f, "gpt2.embedding_length");
    c.n_ff = dim(f, "gpt2.feed_forward_length");
    c.n_layer = dim(f, "gpt2.block_count");
    c.n_head = dim(f, "gpt2.attention.head_count");
    c.n_head_kv = f.find("gpt2.attention.head_count_kv") ? dim(f, "gpt2.attention.head_count_kv") : c.n_head;
    c.ln_eps = float(f.get_float("gpt2.attention.layer_norm_epsilon", 1e-5));
    if (!(c.ln_eps > 0 && c.ln_eps < 1))
        throw std::runtime_error(path + ": gpt2.attention.layer_norm_epsilon = " + std::to_string(c.ln_eps) +
                                 " is out of range (0, 1)");
    if (c.n_embd % c.n_head != 0)
        throw std::runtime_error(path + ": embedding_length " + std::to_string(c.n_embd) +
                                 " is not divisible by head_count " + std::to_string(c.n_head));
    if (c.n_head_kv > c.n_head || c.n_head % c.n_head_kv != 0)
        throw std::runtime_error(path + ": gpt2.attention.head_count_kv " + std::to_string(c.n_head_kv) +
                                 " must divide head_count " + std::to_string(c.n_head));
    if (c.n_layer > 1024) throw std::runtime_error(path + ": block_count " + std::to_string(c.n_layer) + " is absurd");

    // The vocabulary size comes from the embedding itself.
    const GGUFTensor* te = f.find_tensor("token_embd.weight");
    if (!te) throw std::runtime_error(path + ": missing tensor \"token_embd.weight\"");
    if (te->n_dims != 2) throw std::runtime_error(path + ": tensor \"token_embd.weight\" must be 2-D, has shape " + te->shape_string());
    c.n_vocab = te->ne[1];
    if (c.n_vocab > kMaxVocab)
        throw std::runtime_error(path + ": tensor \"token_embd.weight\" has " + std::to_string(c.n_vocab) +
                                 " rows; vocabularies of more than " + std::to_string(kMaxVocab) +
                                 " tokens are not supported (token ids are 32-bit)");

    Loader L(f, c);
    Weights& w = m->weights_;
    w.token_embd = L.matrix("token_embd.weight", c.n_vocab, c.n_embd);
    w.position_embd = L.matrix("position_embd.weight", c.n_ctx, c.n_embd);
    if (w.position_embd.type != DType::F32 && w.position_embd.type != DType::F16)
        L.fail("tensor \"position_embd.weight\" must be f32 or f16");
    w.layers.resize(size_t(c.n_layer));
    for (int64_t l = 0; l < c.n_layer; ++l) {
        const std::string p = "blk." + std::to_string(l) + ".";
        LayerWeights& lw = w.layers[size_t(l)];
        lw.attn_norm_w = L.vector(p + "attn_norm.weight", c.n_embd);
        lw.attn_norm_b = L.vector(p + "attn_norm.bias", c.n_embd);
        lw.attn_qkv = L.matrix(p + "attn_qkv.weight", c.n_qkv(), c.n_embd);
        lw.attn_qkv_b = L.vector(p + "attn_qkv.bias", c.n_qkv());
        lw.attn_out = L.matrix(p + "attn_output.weight", c.n_embd, c.n_embd);
        lw.attn_out_b = L.vector(p + "attn_output.bias", c.n_embd);
        lw.ffn_norm_w = L.vector(p + "ffn_norm.weight", c.n_embd);
        lw.ffn_norm_b = L.vector(p + "ffn_norm.bias", c.n_embd);
        lw.ffn_up = L.matrix(p + "ffn_up.weight", c.n_ff, c.n_embd);
        lw.ffn_up_b = L.vector(p + "ffn_up.bias", c.n_ff);
        lw.ffn_down = L.matrix(p + "ffn_down.weight", c.n_embd, c.n_ff);
        lw.ffn_down_b = L.vector(p + "ffn_down.bias", c.n_embd);
    }
    w.output_norm_w = L.vector("output_norm.weight", c.n_embd);
    w.output_norm_b = L.vector("output_norm.bias", c.n_embd);
    // llama.cpp's converter writes output.weight as a copy of the embedding; files
    // without it are tied. Either way the LM head is a view, never a copy.
    if (f.find_tensor("output.weight")) {
        w.output = L.matrix("output.weight", c.n_vocab, c.n_embd);
        w.tied_output = false;
    } else {
        w.output = w.token_embd;
        w.tied_output = true;
    }
    return m;
}

void Model::populate_weights_in_background() const {
    std::vector<const GGUFTensor*> blocks, rest;
    for (const GGUFTensor& t : gguf_->tensors()) (t.name.rfind("blk.", 0) == 0 ? blocks : rest).push_back(&t);
    blocks.insert(blocks.end(), rest.begin(), rest.end());
    gguf_->populate_in_background(blocks);
}

TokenizerSpec Model::tokenizer_spec() const {
    const GGUFFile& f = *gguf_;
    TokenizerSpec s;
    s.source = f.path();
    const std::string model = f.get_string("tokenizer.ggml.model", "");
    if (model.empty()) throw std::runtime_error(f.path() + ": no tokenizer in the file (tokenizer.ggml.model is missing)");
    if (model == "gpt2") {
        s.model = "gpt2";
        s.tokens = f.get_string_array("tokenizer.ggml.tokens");
        s.merges = f.get_string_array("tokenizer.ggml.merges");
    } else if (model == "llama" && f.find("tokenizer.sentencepiece.model_proto")) {
        s.model = "sentencepiece";
        s.tokens = f.get_string_array("tokenizer.ggml.tokens");
        s.sentencepiece_proto = f.get_bytes("tokenizer.sentencepiece.model_proto");
    } else {
        throw std::runtime_error(f.path() + ": tokenizer \"" + model +
                                 "\" is not supported (gpt2 BPE, or llama/SentencePiece with tokenizer.sentencepiece.model_proto)");
    }
    if (f.find("tokenizer.ggml.scores")) s.scores = f.get_float_array("tokenizer.ggml.scores");
    if (f.find("tokenizer.ggml.token_type")) s.token_types = f.get_int_array("tokenizer.ggml.token_type");
    auto optional_id = [&](const char* key) {
        if (!f.find(key)) return int32_t(-1);
        const uint64_t id = f.get_uint(key);
        if (id >= uint64_t(config_.n_vocab))
            throw std::runtime_error(f.path() + ": metadata \"" + key + "\" = " + std::to_string(id) +
                                     " is outside the vocabulary (0.." + std::to_string(config_.n_vocab - 1) + ")");
        return int32_t(id);
    };
    s.bos_id = optional_id("tokenizer.ggml.bos_token_id");
    s.eos_id = optional_id("tokenizer.ggml.eos_token_id");
    s.add_bos = f.get_bool("tokenizer.ggml.add_bos_token", false);
    if (int64_t(s.tokens.size()) > config_.n_vocab)
        throw std::runtime_error(f.path() + ": tokenizer has " + std::to_string(s.tokens.size()) +
                                 " tokens but the embedding has " + std::to_string(config_.n_vocab) + " rows");
    return s;
}

uint64_t Model::weight_bytes_per_token() const {
    const Config& c = config_;
    auto bytes = [](const Matrix& m) { return uint64_t(m.rows) * uint64_t(m.row_bytes()); };
    uint64_t total = 0;
    for (const LayerWeights& lw : weights_.layers)
        total += bytes(lw.attn_qkv) + bytes(lw.attn_out) + bytes(lw.ffn_up) + bytes(lw.ffn_down) +
                 uint64_t(c.n_qkv() + c.n_embd + c.n_ff + c.n_embd + 4 * c.n_embd) * 4;
    total += bytes(weights_.output) + uint64_t(2 * c.n_embd) * 4;
    return total;
}

}  // namespace minigpt
