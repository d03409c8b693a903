// Pieces shared by `heads dla` and `heads patch`: the model with its tokenizer,
// a prompt as the model sees it, a token named on the command line, how a token
// is printed, and the layer x head heat map of a signed per-head value.
//
// A token argument (--target, --contrast, --answer, --wrong) is either #ID
// (the id itself) or the exact text of one vocabulary entry as
// `minigpt tokenize --pieces` prints it, leading space included (GPT-2 " the",
// SentencePiece's "▁the" is also " the"). A text that is no single entry is
// refused naming the flag and showing how the tokenizer splits it.
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "analysis/ablation.h"
#include "cli/args.h"
#include "cli/heads_common.h"
#include "runtime/model.h"
#include "tokenizer/tokenizer.h"
#include "util/json.h"
#include "util/plot_svg.h"

namespace minigpt::cli {

// The text's ids as generate runs them: BOS first when the tokenizer adds one.
inline std::vector<int32_t> encode_prompt(const Tokenizer& tok, const std::string& text, const std::string& flag) {
    std::vector<int32_t> ids;
    if (tok.add_bos() && tok.bos_id() >= 0) ids.push_back(tok.bos_id());
    const std::vector<int32_t> body = tok.encode(text);
    ids.insert(ids.end(), body.begin(), body.end());
    if (ids.empty()) usage_error(flag + ": the text has no tokens");
    return ids;
}

// A token's text as a JSON string ("\" the\""); control tokens by name.
inline std::string token_name(const Tokenizer& tok, const TokenizerSpec& spec, int32_t id) {
    std::string piece = tok.token_bytes(id);
    if (piece.empty() && size_t(id) < spec.tokens.size()) piece = spec.tokens[size_t(id)];
    return json_quote(piece);
}

// #ID or one vocabulary entry's exact text (see above); `flag` names the option in errors.
inline int32_t token_argument(const Tokenizer& tok, const TokenizerSpec& spec, const std::string& value,
                              const std::string& flag) {
    const int32_t V = tok.vocab_size();
    if (value.empty()) usage_error(flag + ": empty token (give its text or #ID)");
    if (value.size() > 1 && value[0] == '#' && value.find_first_not_of("0123456789", 1) == std::string::npos) {
        if (value.size() > 10 || std::stoll(value.substr(1)) >= V)
            usage_error(flag + ": token id " + value.substr(1) + " is outside the vocabulary (0.." + std::to_string(V - 1) + ")");
        return int32_t(std::stoll(value.substr(1)));
    }
    // Several entries may spell the same bytes (a piece and its byte-fallback
    // twin): prefer the one the tokenizer itself produces for the text.
    const std::vector<int32_t> enc = tok.encode(value);
    if (enc.size() == 1 && tok.token_bytes(enc[0]) == value) return enc[0];
    for (int32_t id = 0; id < V; ++id)
        if (tok.token_bytes(id) == value) return id;
    std::string split;
    for (size_t i = 0; i < enc.size() && i < 8; ++i) split += " " + token_name(tok, spec, enc[i]);
    if (enc.size() > 8) split += " ...";
    usage_error(flag + ": " + json_quote(value) + " is not one token of the vocabulary" +
                (enc.empty() ? std::string() : " (the tokenizer splits it into" + split + ")") +
                "; give one token's text exactly as `minigpt tokenize --pieces` prints it, or #ID");
}

// A (layer, head) heat map of signed values (blue negative, red positive).
inline SvgPanel head_heatmap(const std::string& title, int64_t n_layer, int64_t n_head, const std::vector<double>& values,
                             double limit = 0) {
    SvgHeatmap hm = head_grid(title, n_layer, n_head, values);
    hm.diverging = true;
    if (limit > 0) hm.vmin = -limit, hm.vmax = limit;
    return render_heatmap(hm);
}

// The model of -m with its tokenizer and the vocabulary token_argument and token_name read.
struct ModelWithTokenizer {
    std::unique_ptr<Model> model;
    TokenizerSpec spec;
    std::unique_ptr<Tokenizer> tok;
};

inline ModelWithTokenizer load_model_with_tokenizer(const std::string& path) {
    ModelWithTokenizer m;
    m.model = Model::load(path);
    m.spec = m.model->tokenizer_spec();
    m.tok = make_tokenizer(m.spec);
    return m;
}

}  // namespace minigpt::cli
