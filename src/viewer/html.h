// Writes the viewer: one self-contained HTML page (inline style, script and
// data; it fetches nothing) from a trace, optionally an attention export and
// head statistics. The page source is viewer/ (embedded by
// scripts/embed_viewer.py); the data go between its head and tail as
//
//   <script type="application/json" id="mg-data">{...}</script>
//     {"format":"minigpt-view","version":1,"title","model" (its general.name),
//      "tokens":{"ids":[...],"text":[...],"n_prompt":P,"hex":{"pos":"bytes in hex"} for invalid UTF-8},
//      "steps":[null per prompt token, then {"id","logprob","entropy","top","lens"?}],
//      "attention":null or {"n_layer","n_head","n_rows","quant":"sqrt-u8","head_bytes",
//                           "layers":["mg-attn-0",...],"thumb":{"size":S,"id":"mg-thumb"}},
//      "stats":null or the read_viewer_stats() object}
//   <script type="application/octet-stream" id="mg-attn-L">BASE64</script>  (one per layer)
//   <script type="application/octet-stream" id="mg-thumb">BASE64</script>
//
// Layer block L is base64 of, for each head h, rows 0..n_rows-1 of the lower
// triangle (row t: t+1 bytes q = round(255 sqrt(w))), zero-padded to head_bytes
// (a multiple of 3, so every head starts on a base64 group and the page can
// decode any row without decoding the rest). The thumbnails are each head's
// whole pattern averaged over S x S blocks (row block floor(t*S/n_rows)),
// quantised the same way, heads in layer-major order.
#pragma once
#include <string>

#include "analysis/attention_export.h"
#include "util/output_file.h"
#include "viewer/data.h"

namespace minigpt {

struct ViewerPageInput {
    std::string title;
    const ViewerTrace* trace = nullptr;        // required
    const AttentionFile* attention = nullptr;  // optional
    Json stats;                                // null when absent
    int thumb_size = 64;                       // thumbnail side (capped at the number of rows)
};

// Streams the page into out (which the caller commits).
void write_viewer_page(OutputFile& out, const ViewerPageInput& in);

// base64 (RFC 4648, with '=' padding) of n bytes, appended to out.
void append_base64(std::string& out, const uint8_t* data, size_t n);

}  // namespace minigpt
