// The viewer page's HTML, CSS and script. The definitions are generated at build
// time from viewer/viewer.{html,css,js} by scripts/embed_viewer.py into
// $(BUILD)/gen/viewer/assets_{head,tail}.cpp (see the Makefile); nothing generated
// is committed. The page is head + data blocks + tail.
#pragma once
#include <string_view>

namespace minigpt {

extern const std::string_view kViewerPageHead;  // up to where the data blocks go
extern const std::string_view kViewerPageTail;  // the script and the closing tags

}  // namespace minigpt
