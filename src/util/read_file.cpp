#include "util/read_file.h"

#include <fstream>
#include <sstream>
#include <stdexcept>

namespace minigpt {

std::string read_file(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    if (!f) throw std::runtime_error(path + ": cannot open for reading");
    std::ostringstream ss;
    ss << f.rdbuf();
    if (f.bad()) throw std::runtime_error(path + ": read error");
    return ss.str();
}

}  // namespace minigpt
