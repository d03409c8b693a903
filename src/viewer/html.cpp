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

    JsonValue description() const {
        JsonValue d = JsonValue::object();
        d.set("n_layer", JsonValue::number(double(a_.n_layer())));
        d.set("n_head", JsonValue::number(double(a_.n_head())));
        d.set("n_rows", JsonValue::number(double(rows_)));
        d.set("quant", JsonValue::string("sqrt-u8"));
        d.set("head_bytes", JsonValue::number(double(head_bytes_)));
        JsonValue layers = JsonValue::array();
        for (int64_t l = 0; l < a_.n_layer(); ++l) layers.push(JsonValue::string("mg-attn-" + std::to_string(l)));
        d.set("layers", std::move(layers));
        JsonValue thumb = JsonValue::object();
        thumb.set("size", JsonValue::number(double(S_)));
        thumb.set("id", JsonValue::string("mg-thumb"));
        d.set("thumb", std::move(thumb));
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
    JsonValue data = JsonValue::object();
    data.set("format", JsonValue::string("minigpt-view"));
    data.set("version", JsonValue::number(1));
    data.set("title", JsonValue::string(in.title));
    data.set("model", JsonValue::string(tr.model));  // the summary line gives the layer and head counts
    JsonValue tokens = JsonValue::object();
    JsonValue ids = JsonValue::array();
    for (int32_t id : tr.ids) ids.push(JsonValue::number(id));
    tokens.set("ids", std::move(ids));
    tokens.set("text", tr.texts);
    tokens.set("n_prompt", JsonValue::number(double(tr.n_prompt)));
    tokens.set("hex", tr.hex);
    data.set("tokens", std::move(tokens));
    data.set("steps", tr.steps);

    std::unique_ptr<AttentionBlocks> blocks;
    if (in.attention && in.attention->n_tokens() > 0) {
        blocks = std::make_unique<AttentionBlocks>(*in.attention, in.thumb_size);
        data.set("attention", blocks->description());
    } else {
        data.set("attention", JsonValue{});
    }
    data.set("stats", in.stats);

    out.write(kViewerPageHead.data(), kViewerPageHead.size());
    std::string text = "<script type=\"application/json\" id=\"mg-data\">";
    data.write(text);
    text += "</script>\n";
    out.write(text);
    if (blocks) blocks->write(out);
    out.write(kViewerPageTail.data(), kViewerPageTail.size());
}

}  // namespace minigpt
