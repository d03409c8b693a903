// A text's token ids cut into windows that each fit in the context, as the
// head statistics, the mean-ablation reference and the head-importance
// perplexity read them: consecutive, non-overlapping, each run from an empty
// KV cache.
#pragma once
#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace minigpt {

// Windows of at most `window` tokens. With bos >= 0 every window starts with
// bos followed by window-1 text tokens (llama-perplexity does the same for
// models whose tokenizer adds BOS). A last window of fewer than 2 tokens is
// dropped (it predicts nothing); max_windows > 0 keeps only the first ones.
inline std::vector<std::vector<int32_t>> split_windows(const std::vector<int32_t>& ids, int64_t window, int32_t bos,
                                                       int64_t max_windows = 0) {
    if (window < 2) throw std::runtime_error("window of " + std::to_string(window) + " tokens: need at least 2");
    const int64_t text_per_window = bos >= 0 ? window - 1 : window;
    std::vector<std::vector<int32_t>> out;
    for (size_t start = 0; start < ids.size(); start += size_t(text_per_window)) {
        if (max_windows > 0 && int64_t(out.size()) >= max_windows) break;
        const size_t end = std::min(ids.size(), start + size_t(text_per_window));
        std::vector<int32_t> w;
        w.reserve(size_t(window));
        if (bos >= 0) w.push_back(bos);
        w.insert(w.end(), ids.begin() + long(start), ids.begin() + long(end));
        if (w.size() >= 2) out.push_back(std::move(w));
    }
    return out;
}

}  // namespace minigpt
