// Small string tests the standard library gains only in C++20.
#pragma once
#include <string_view>

namespace minigpt {

inline bool ends_with(std::string_view s, std::string_view suffix) {
    return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace minigpt
