// A whole file's bytes as a string, with errors that name the file: the one
// file reader of the project (tokenizer files, prompts, texts, traces).
#pragma once
#include <cstdint>
#include <string>

namespace minigpt {

// The bytes of `path`; "-" reads standard input to its end. Throws
// std::runtime_error("<path>: cannot read: <strerror>") when the file cannot be
// opened or read (a directory gives "Is a directory"); "-" is named
// "standard input" there. A non-empty `option` (the flag that named the file)
// is added as " (<option>)", so the message also says where the path came from.
std::string read_file(const std::string& path, const std::string& option = "");

// Up to `n` bytes of `path` from byte `offset` (fewer where the file ends), with
// the same errors: a header read without reading the weights behind it.
std::string read_file_range(const std::string& path, uint64_t offset, uint64_t n);

}  // namespace minigpt
