// What the viewer page shows, gathered from the files other commands write:
// the trace (src/analysis/trace.h: a "prompt" line, then one "step" line per generated
// token), the attention export (src/analysis/attention_export.h) and the head
// statistics JSON (`minigpt heads stats --json`). Everything is checked
// against everything else (token ids, layer and head counts) before a page is
// written, so a page never silently mixes two runs.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>  // the members below are JSON values (util/json.h)

#include "analysis/attention_export.h"
#include "util/json.h"

namespace minigpt {

// The viewer stores attention weights as one byte each, q = round(255 * sqrt(w)):
// the square root spends the 256 levels where attention mass usually is (small
// weights: a uniform row over 1 024 tokens, w ~ 0.001, still gets q = 8), and
// the decoded (q/255)^2 is within sqrt(w)/255 + 1/260100 of w (at most 0.0039:
// |q/255 - sqrt(w)| <= 1/510 and (q/255)^2 - w = (q/255 - sqrt(w))(q/255 + sqrt(w))).
uint8_t quantize_attention_weight(float w);
inline double dequantize_attention_weight(uint8_t q) { return (q / 255.0) * (q / 255.0); }

struct ViewerTrace {
    std::string model;                // the model's general.name ("" if unknown)
    int64_t n_layer = 0, n_head = 0;  // from the prompt line
    std::string attention_path;       // the attention export named in the trace ("" for none)
    int64_t n_prompt = 0;
    std::vector<int32_t> ids;         // every position: prompt, then generated
    Json texts = Json::array();  // string per position
    Json hex = Json::object();   // position -> exact bytes in hex, for tokens that are not valid UTF-8
    // Per position: null for prompt tokens, else the step in the page's compact
    // form {"logprob","entropy","top":[[id,text,p],...],"lens":[[[id,text,p],...] per layer],
    // "dla":{"logit":x,"heads":[[layer,head,value],...]}}.
    Json steps = Json::array();
};

// Reads a trace file (JSONL); errors name the file and line.
ViewerTrace read_viewer_trace(const std::string& path);

// Head statistics in the page's form:
//   {"metrics":[{"key","label","values":[[per head] per layer]}...],
//    "similarity":{"label","values":[[...]]} or absent}
// Accepts the JSON `minigpt heads stats --json` writes (see the .cpp for the
// shapes understood); n_layer/n_head are checked when > 0.
Json read_viewer_stats(const std::string& path, int64_t n_layer, int64_t n_head);

// Throws if the attention file does not belong to the trace: layer/head counts
// differ, it covers more positions than the trace has, or its token ids differ.
void check_attention_matches_trace(const AttentionFile& att, const ViewerTrace& trace, const std::string& att_path);

}  // namespace minigpt
