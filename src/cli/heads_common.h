// Shared pieces of the `minigpt heads` subcommands: reading the text to
// analyse (a file through the model's tokenizer, or raw ids), cutting it into
// windows, and a progress callback on stderr.
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <functional>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <cxxopts.hpp>

#include "cli/args.h"
#include "runtime/model.h"
#include "util/progress.h"
#include "eval/text_windows.h"
#include "tokenizer/tokenizer.h"

namespace minigpt::cli {

inline std::string read_text_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error(path + ": cannot open");
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

// The token ids of -f FILE (encoded with the model's tokenizer) or --ids.
struct HeadsText {
    std::vector<int32_t> ids;
    int32_t bos = -1;  // prepended to every window when the tokenizer adds BOS (SentencePiece), else -1
    std::string source;
};

// A text file encoded with the model's tokenizer.
inline HeadsText load_heads_text_file(const Model& model, const std::string& path) {
    HeadsText t;
    const std::unique_ptr<Tokenizer> tok = make_tokenizer(model.tokenizer_spec());
    t.ids = tok->encode(read_text_file(path));
    if (tok->add_bos() && tok->bos_id() >= 0) t.bos = tok->bos_id();
    t.source = path;
    if (t.ids.empty()) throw std::runtime_error(path + ": the text has no tokens");
    return t;
}

// The text of -f/--FILE_OPT FILE or --IDS_OPT "ID ID ...", exactly one of them.
inline HeadsText load_heads_text(const Model& model, const cxxopts::ParseResult& args, const char* file_opt = "file",
                                 const char* ids_opt = "ids") {
    const bool has_file = args.count(file_opt) > 0, has_ids = args.count(ids_opt) > 0;
    if (has_file == has_ids)
        throw std::runtime_error(std::string("give the text as -f/--") + file_opt + " FILE or as --" + ids_opt +
                                 " \"ID ID ...\" (one of the two)");
    if (has_file) return load_heads_text_file(model, args[file_opt].as<std::string>());
    HeadsText t;
    t.ids = parse_ids(args[ids_opt].as<std::string>(), ids_opt);
    t.source = "--" + std::string(ids_opt);
    return t;
}

// -c: tokens per window; 0 = 512, or the model's context if that is smaller.
inline int64_t window_size(const Model& model, int64_t c) {
    const int64_t n_ctx = model.config().n_ctx;
    if (c < 0) throw std::runtime_error("-c/--ctx-size must not be negative");
    if (c == 0) return std::min<int64_t>(512, n_ctx);
    if (c > n_ctx)
        throw std::runtime_error("-c " + std::to_string(c) + " exceeds the model's context of " + std::to_string(n_ctx));
    if (c < 2) throw std::runtime_error("-c must be at least 2");
    return c;
}

// A progress callback drawing a bar on stderr (only on a terminal; see progress.h).
class HeadsProgress {
public:
    HeadsProgress(const std::string& label, int64_t total) : bar_(label, total) {}
    std::function<void(int64_t, int64_t)> callback() {
        return [this](int64_t done, int64_t) { bar_.update(done); };
    }
    void finish(const std::string& summary) { bar_.finish(summary); }

private:
    ProgressBar bar_;
};

}  // namespace minigpt::cli
