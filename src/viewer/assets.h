// The viewer page's HTML, CSS and script, generated into viewer_assets_head.cpp and viewer_assets_tail.cpp by
// scripts/embed_viewer.py from viewer/. The page is head + data blocks + tail.
#pragma once
#include <string_view>

namespace minigpt {

extern const std::string_view kViewerPageHead;  // up to where the data blocks go
extern const std::string_view kViewerPageTail;  // the script and the closing tags

}  // namespace minigpt
