#include "viewer/html.h"

#include <algorithm>
#include <memory>
#include <vector>

#include "viewer/assets.h"

namespace minigpt {

void append_base64(std::string& out, const uint8_t* data, size_t n) {
    static const char* abc = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    out.reserve(out.size() + (n + 2) / 3 * 4);
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        const uint32_t v = uint32_t(data[i]) << 16 | uint32_t(data[i + 1]) << 8 | data[i + 2];
        out += abc[v >> 18];
        out += abc[(v >> 12) & 63];
        out += abc[(v >> 6) & 63];
        out += abc[v & 63];
    }
    if (i < n) {
        const uint32_t v = uint32_t(data[i]) << 16 | (i + 1 < n ? uint32_t(data[i + 1]) << 8 : 0);
        out += abc[v >> 18];
        out += abc[(v >> 12) & 63];
        out += i + 1 < n ? abc[(v >> 6) & 63] : '=';
        out += '=';
    }
}

namespace {

int64_t tri(int64_t k) { return k * (k + 1) / 2; }

// Writes the per-layer attention blocks and the thumbnails; returns the
// "attention" member of the page data.
class AttentionBlocks {
public:
    AttentionBlocks(const AttentionFile& a, int thumb_size)
        : a_(a), rows_(a.n_tokens()), S_(std::max<int64_t>(1, std::min<int64_t>(thumb_size, a.n_tokens()))) {
        head_bytes_ = (tri(rows_) + 2) / 3 * 3;
        block_of_.resize(size_t(rows_));
        for (int64_t i = 0; i < rows_; ++i) block_of_[size_t(i)] = i * S_ / rows_;
        counts_.assign(size_t(S_ * S_), 0);
        for (int64_t i = 0; i < rows_; ++i)
            for (int64_t j = 0; j <= i; ++j) ++counts_[size_t(block_of_[size_t(i)] * S_ + block_of_[size_t(j)])];
        thumbs_.reserve(size_t(a.n_layer() * a.n_head() * S_ * S_));
    }

    Json description() const {
        Json d = Json::object();
        d["n_layer"] = a_.n_layer();
        d["n_head"] = a_.n_head();
        d["n_rows"] = rows_;
        d["quant"] = "sqrt-u8";
        d["head_bytes"] = head_bytes_;
        Json layers = Json::array();
        for (int64_t l = 0; l < a_.n_layer(); ++l) layers.push_back("mg-attn-" + std::to_string(l));
        d["layers"] = std::move(layers);
        Json thumb = Json::object();
        thumb["size"] = S_;
        thumb["id"] = "mg-thumb";
        d["thumb"] = std::move(thumb);
        return d;
    }

    void write(OutputFile& out) {
        std::vector<uint8_t> head(static_cast<size_t>(head_bytes_));
        std::vector<float> row(static_cast<size_t>(rows_));
        std::vector<double> sums(static_cast<size_t>(S_ * S_));
        std::string text;
        for (int64_t l = 0; l < a_.n_layer(); ++l) {
            out.write("<script type=\"application/octet-stream\" id=\"mg-attn-" + std::to_string(l) + "\">");
            for (int64_t h = 0; h < a_.n_head(); ++h) {
                std::fill(head.begin(), head.end(), 0);
                std::fill(sums.begin(), sums.end(), 0.0);
                for (int64_t t = 0; t < rows_; ++t) {
                    a_.row(l, h, t, row.data());
                    uint8_t* q = head.data() + tri(t);
                    double* srow = sums.data() + block_of_[size_t(t)] * S_;
                    for (int64_t j = 0; j <= t; ++j) {
                        q[j] = quantize_attention_weight(row[size_t(j)]);
                        srow[block_of_[size_t(j)]] += row[size_t(j)];
                    }
                }
                for (size_t k = 0; k < sums.size(); ++k)
                    thumbs_.push_back(counts_[k] ? quantize_attention_weight(float(sums[k] / double(counts_[k]))) : 0);
                text.clear();
                append_base64(text, head.data(), head.size());
                out.write(text);
            }
            out.write("</script>\n");
        }
        text.clear();
        append_base64(text, thumbs_.data(), thumbs_.size());
        out.write("<script type=\"application/octet-stream\" id=\"mg-thumb\">" + text + "</script>\n");
    }

private:
    const AttentionFile& a_;
    int64_t rows_, S_, head_bytes_ = 0;
    std::vector<int64_t> block_of_;  // position -> thumbnail block
    std::vector<int64_t> counts_;    // lower-triangle entries per thumbnail block
    std::vector<uint8_t> thumbs_;
};

}  // namespace

void write_viewer_page(OutputFile& out, const ViewerPageInput& in) {
    const ViewerTrace& tr = *in.trace;
    Json data = Json::object();
    data["format"] = "minigpt-view";
    data["version"] = 1;
    data["title"] = in.title;
    data["model"] = tr.model;  // the summary line gives the layer and head counts
    Json tokens = Json::object();
    tokens["ids"] = tr.ids;
    tokens["text"] = tr.texts;
    tokens["n_prompt"] = tr.n_prompt;
    tokens["hex"] = tr.hex;
    data["tokens"] = std::move(tokens);
    data["steps"] = tr.steps;

    std::unique_ptr<AttentionBlocks> blocks;
    if (in.attention && in.attention->n_tokens() > 0) {
        blocks = std::make_unique<AttentionBlocks>(*in.attention, in.thumb_size);
        data["attention"] = blocks->description();
    } else {
        data["attention"] = nullptr;
    }
    data["stats"] = in.stats;

    out.write(kViewerPageHead.data(), kViewerPageHead.size());
    // HTML-safe: no "</script>" (nor "<!--") can appear inside the element.
    const std::string text = "<script type=\"application/json\" id=\"mg-data\">" +
                             json_dump(data, JsonEscape::kHtmlScript) + "</script>\n";
    out.write(text);
    if (blocks) blocks->write(out);
    out.write(kViewerPageTail.data(), kViewerPageTail.size());
}

}  // namespace minigpt
