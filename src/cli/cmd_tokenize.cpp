// minigpt tokenize: text -> token ids with a model's tokenizer (from a GGUF
// file, or from vocab.json + merges.txt), like llama.cpp's llama-tokenize.
#include <cstdio>
#include <cxxopts.hpp>
#include <string>
#include <vector>

#include "cli/args.h"
#include "cli/commands.h"
#include "tokenizer/gpt2_files.h"
#include "runtime/model.h"
#include "tokenizer/tokenizer.h"
#include "util/json.h"

namespace minigpt::cli {

int cmd_tokenize(int argc, char** argv) {
    cxxopts::Options opts =
        command_options(argv[0], "Print the token ids of a text (from -p, -f FILE, or stdin when neither is given).\n"
                                 "The tokenizer comes from a GGUF model (-m) or from GPT-2's vocab.json + merges.txt.\n"
                                 "BOS is prepended when the tokenizer asks for it (SentencePiece models), as llama.cpp "
                                 "does.");
    add_model_option(opts, "GGUF model whose tokenizer to use");
    add_prompt_option(opts, "the text");
    add_file_option(opts, "read the text from FILE (- = stdin), byte for byte");
    // clang-format off
    opts.add_options()
        ("vocab", "GPT-2 vocab.json (with --merges)", cxxopts::value<std::string>(), "FILE")
        ("merges", "GPT-2 merges.txt (with --vocab)", cxxopts::value<std::string>(), "FILE")
        ("pieces", "one line per token: id, then its text as a JSON string (invalid UTF-8 as U+FFFD)")
        ("special", "special-token text (e.g. <|endoftext|>) becomes the special token; default: ordinary text")
        ("no-bos", "never prepend BOS");
    // clang-format on
    cxxopts::ParseResult r;
    if (!parse_flags(opts, argc, argv, r)) return 0;
    const bool from_gguf = r.count("model") > 0, from_files = r.count("vocab") + r.count("merges") > 0;
    if (from_gguf && from_files) usage_error("give either -m/--model or --vocab and --merges, not both");
    if (!from_gguf && !from_files) usage_error("no tokenizer: give -m/--model FILE.gguf, or --vocab and --merges");
    if (from_files && (!r.count("vocab") || !r.count("merges")))
        usage_error(std::string("--vocab and --merges go together; ") + (r.count("vocab") ? "--merges" : "--vocab") +
                    " is missing");
    if (r.count("prompt") && r.count("file")) usage_error("give only one of -p/--prompt and -f/--file");

    TokenizerSpec spec;
    if (from_gguf) {
        const std::string path = r["model"].as<std::string>();
        require_file(path, "-m/--model");
        spec = Model::load(path)->tokenizer_spec();
    } else {
        require_file(r["vocab"].as<std::string>(), "--vocab");
        require_file(r["merges"].as<std::string>(), "--merges");
        spec = load_gpt2_files(r["vocab"].as<std::string>(), r["merges"].as<std::string>());
    }
    const std::unique_ptr<Tokenizer> tok = make_tokenizer(spec);

    const std::string text = r.count("prompt") ? r["prompt"].as<std::string>()
                             : read_input(r.count("file") ? r["file"].as<std::string>() : "-", "-f/--file");
    std::vector<int32_t> ids;
    if (tok->add_bos() && tok->bos_id() >= 0 && !r.count("no-bos")) ids.push_back(tok->bos_id());
    const std::vector<int32_t> body = tok->encode(text, r.count("special") > 0);
    ids.insert(ids.end(), body.begin(), body.end());

    std::string out;
    if (r.count("pieces")) {
        for (int32_t id : ids) {
            // Control tokens (SentencePiece's <s>) decode to nothing: show their name instead.
            std::string piece = tok->token_bytes(id);
            if (piece.empty() && size_t(id) < spec.tokens.size()) piece = spec.tokens[size_t(id)];
            out += std::to_string(id) + "\t" + json_quote(piece) + "\n";
        }
    } else {
        for (size_t i = 0; i < ids.size(); ++i) out += (i ? " " : "") + std::to_string(ids[i]);
        out += "\n";
    }
    std::fwrite(out.data(), 1, out.size(), stdout);
    return 0;
}

}  // namespace minigpt::cli

namespace {
minigpt::cli::RegisterCommand reg{"tokenize", minigpt::cli::cmd_tokenize,
                                  "print the token ids (or pieces) of a text", 20};
}
