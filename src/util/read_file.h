// A whole file's bytes as a string, with errors that name the file.
#pragma once
#include <string>

namespace minigpt {

// Throws std::runtime_error("<path>: cannot open for reading" / ": read error").
std::string read_file(const std::string& path);

}  // namespace minigpt
