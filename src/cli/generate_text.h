// Text helpers of `minigpt generate`, header-only so the unit tests can use
// them without linking the command line:
//   StopFilter   streams text while holding back whatever could still become
//                the start of a stop string, and cuts the text at the first one
// (JSON strings: json_quote in util/json.h.)
#pragma once
#include <algorithm>
#include <string>
#include <vector>

namespace minigpt::cli {

class StopFilter {
public:
    explicit StopFilter(std::vector<std::string> stops) : stops_(std::move(stops)) {
        stops_.erase(std::remove(stops_.begin(), stops_.end(), std::string()), stops_.end());
    }

    // Adds decoded text; returns the part that is safe to print now. After a
    // stop string appears, returns the text before it and stopped() is true.
    std::string push(const std::string& text) {
        if (stopped_) return {};
        pending_ += text;
        size_t cut = std::string::npos;
        for (const std::string& s : stops_) cut = std::min(cut, pending_.find(s));
        if (cut != std::string::npos) {
            stopped_ = true;
            std::string out = pending_.substr(0, cut);
            pending_.clear();
            return out;
        }
        // Hold back the longest suffix that is a proper prefix of a stop string:
        // only there can a stop string begin that the next text completes.
        size_t hold = 0;
        for (const std::string& s : stops_)
            for (size_t k = std::min(s.size() - 1, pending_.size()); k > hold; --k)
                if (pending_.compare(pending_.size() - k, k, s, 0, k) == 0) {
                    hold = k;
                    break;
                }
        std::string out = pending_.substr(0, pending_.size() - hold);
        pending_.erase(0, pending_.size() - hold);
        return out;
    }

    // At the end of generation: what was held back (no stop string completed).
    std::string finish() {
        std::string out;
        out.swap(pending_);
        return out;
    }

    bool stopped() const { return stopped_; }

private:
    std::vector<std::string> stops_;
    std::string pending_;
    bool stopped_ = false;
};

}  // namespace minigpt::cli
