// Reads a GPT-2 tokenizer from the two files OpenAI and Hugging Face ship:
// vocab.json ({"token text": id, ...}, token texts in the byte-to-unicode form)
// and merges.txt (an optional "#version" line, then one "a b" merge per line,
// highest priority first).
#pragma once
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace minigpt {

// The spec make_tokenizer() takes: model "gpt2", tokens in id order, merges in
// rank order, "<|...|>" tokens typed CONTROL (the rest NORMAL), BOS = EOS =
// "<|endoftext|>" when the vocabulary has it. Ids missing from vocab.json
// become "[PAD<id>]" tokens of type UNUSED. Throws std::runtime_error naming
// the file, the line and column (vocab.json, read by util/json.h) or line
// (merges.txt) and what was expected.
TokenizerSpec load_gpt2_files(const std::string& vocab_path, const std::string& merges_path);

// The merges.txt parser on its own: "a b" lines in rank order, an optional first
// "#version" line and empty lines skipped, a trailing '\r' dropped. `source` names
// the text in error messages (with the line).
std::vector<std::string> parse_merges_txt(std::string_view text, const std::string& source);

// The vocab.json parser on its own: token text -> id pairs in file order.
// `source` names the text in error messages.
std::vector<std::pair<std::string, int64_t>> parse_vocab_json(const std::string& json, const std::string& source);

}  // namespace minigpt
