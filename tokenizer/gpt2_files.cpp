#include "tokenizer/gpt2_files.h"

#include <cstdint>
#include <stdexcept>
#include <utility>
#include <vector>

#include "tokenizer/gpt2_bpe.h"
#include "tokenizer/gpt2_byte_map.h"
#include "util/json.h"
#include "util/read_file.h"

namespace minigpt {

namespace {

// Token ids are int32 everywhere (GGUF's token arrays, the tokenizer).
constexpr int64_t kMaxId = INT32_MAX;

}  // namespace

std::vector<std::pair<std::string, int64_t>> parse_vocab_json(const std::string& json, const std::string& source) {
    std::vector<std::pair<std::string, int64_t>> entries;
    json_read_int_object(json, source, [&](std::string& text, int64_t id) {
        if (id < 0 || id > kMaxId)
            throw std::runtime_error(source + ": token " + json_quote(text) + ": expected a token id below 2^31 and " +
                                     "not negative, found " + std::to_string(id));
        entries.emplace_back(std::move(text), id);
    });
    return entries;
}

std::vector<std::string> parse_merges_txt(std::string_view text, const std::string& source) {
    std::vector<std::string> merges;
    size_t line_no = 0;
    for (size_t pos = 0; pos < text.size();) {
        size_t end = text.find('\n', pos);
        if (end == std::string_view::npos) end = text.size();
        std::string line(text.substr(pos, end - pos));
        pos = end + 1;
        ++line_no;
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.empty() || (line_no == 1 && line.compare(0, 8, "#version") == 0)) continue;
        const size_t space = line.find(' ');
        if (space == std::string::npos || space == 0 || space + 1 == line.size() ||
            line.find(' ', space + 1) != std::string::npos)
            throw std::runtime_error(source + ": line " + std::to_string(line_no) +
                                     ": expected two token texts separated by one space, found \"" + line + "\"");
        merges.push_back(std::move(line));
    }
    return merges;
}

TokenizerSpec load_gpt2_files(const std::string& vocab_path, const std::string& merges_path) {
    TokenizerSpec spec;
    spec.model = "gpt2";
    spec.source = vocab_path + " + " + merges_path;

    const auto entries = parse_vocab_json(read_file(vocab_path), vocab_path);
    if (entries.empty()) throw std::runtime_error(vocab_path + ": the vocabulary object is empty");
    int64_t max_id = -1;
    for (const auto& e : entries) max_id = std::max(max_id, e.second);
    // Missing ids become padding tokens: a gap far beyond the entries is a corrupt file,
    // not a vocabulary (and must not allocate 2^31 strings).
    const int64_t max_allowed = 2 * int64_t(entries.size()) + 1024;
    if (max_id > max_allowed)
        throw std::runtime_error(vocab_path + ": token id " + std::to_string(max_id) + " is far beyond the " +
                                 std::to_string(entries.size()) + " entries (ids up to " +
                                 std::to_string(max_allowed) + " are accepted; missing ones become padding)");
    spec.tokens.assign(size_t(max_id + 1), std::string());
    spec.token_types.assign(size_t(max_id + 1), kTokenUnused);
    std::vector<bool> seen(size_t(max_id + 1), false);
    for (const auto& [text, id] : entries) {
        if (seen[size_t(id)])
            throw std::runtime_error(vocab_path + ": id " + std::to_string(id) + " is given to both \"" +
                                     spec.tokens[size_t(id)] + "\" and \"" + text + "\"");
        seen[size_t(id)] = true;
        spec.tokens[size_t(id)] = text;
        const bool special = text.size() >= 4 && text.compare(0, 2, "<|") == 0 &&
                             text.compare(text.size() - 2, 2, "|>") == 0;
        spec.token_types[size_t(id)] = special ? kTokenControl : kTokenNormal;
        if (text == "<|endoftext|>") spec.bos_id = spec.eos_id = int32_t(id);
    }
    for (size_t id = 0; id < seen.size(); ++id)
        if (!seen[id]) spec.tokens[id] = "[PAD" + std::to_string(id) + "]";

    spec.merges = parse_merges_txt(read_file(merges_path), merges_path);
    return spec;
}

}  // namespace minigpt
