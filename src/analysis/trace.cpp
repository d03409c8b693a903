#include "analysis/trace.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>

#include "util/json.h"
#include "util/utf8.h"

namespace minigpt {

DistributionSummary summarize_distribution(const float* logits, int64_t n, int32_t chosen, int top_k,
                                           std::vector<int32_t>& order) {
    DistributionSummary s;
    double mx = -std::numeric_limits<double>::infinity();
    for (int64_t i = 0; i < n; ++i) mx = std::max(mx, double(logits[i]));
    double z = 0, pl = 0;  // sum exp(l - mx), sum exp(l - mx) (l - mx)
    for (int64_t i = 0; i < n; ++i) {
        const double e = std::exp(double(logits[i]) - mx);
        if (e > 0) {
            z += e;
            pl += e * (double(logits[i]) - mx);
        }
    }
    const double log_z = std::log(z);  // log-sum-exp minus mx
    s.entropy = log_z - pl / z;        // -sum p log p with log p = l - mx - log_z
    if (chosen >= 0 && chosen < n) s.logprob = double(logits[chosen]) - mx - log_z;
    const int64_t k = std::min<int64_t>(std::max(top_k, 0), n);
    order.resize(size_t(n));
    for (int64_t i = 0; i < n; ++i) order[size_t(i)] = int32_t(i);
    std::partial_sort(order.begin(), order.begin() + k, order.end(), [logits](int32_t a, int32_t b) {
        return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
    });
    for (int64_t i = 0; i < k; ++i) {
        const int32_t id = order[size_t(i)];
        s.top.push_back(TokenProb{id, std::exp(double(logits[id]) - mx - log_z)});
    }
    return s;
}

namespace {

void append_number(std::string& out, double x) {
    if (!std::isfinite(x)) {  // JSON has no infinities
        out += "null";
        return;
    }
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.7g", x);
    out += buf;
}

}  // namespace

TraceWriter::TraceWriter(const std::string& path, const Model& model, const Tokenizer& tokenizer, const TraceOptions& opt)
    : path_(path), model_(model), tok_(tokenizer), opt_(opt) {
    if (opt_.top_k < 0 || opt_.lens_top_k < 0) throw std::runtime_error("trace: top-k must not be negative");
    f_ = std::fopen(path.c_str(), "wb");
    if (!f_) throw std::runtime_error(path + ": cannot create: " + std::strerror(errno));
    if (opt_.logit_lens) lens_ = std::make_unique<LogitLens>(model);
}

TraceWriter::~TraceWriter() {
    if (f_) std::fclose(f_);
}

void TraceWriter::append_token(std::string& line, int32_t id) {
    const std::string bytes = id >= 0 && id < tok_.vocab_size() ? tok_.token_bytes(id) : std::string();
    line += "\"id\":" + std::to_string(id) + ",\"text\":";
    write_json_string(line, bytes);
    if (!valid_utf8(bytes)) {
        static const char* hex = "0123456789abcdef";
        line += ",\"hex\":\"";
        for (unsigned char c : bytes) {
            line += hex[c >> 4];
            line += hex[c & 15];
        }
        line += '"';
    }
}

void TraceWriter::append_top(std::string& line, const std::vector<TokenProb>& top) {
    line += '[';
    for (size_t i = 0; i < top.size(); ++i) {
        if (i) line += ',';
        line += '{';
        append_token(line, top[i].id);
        line += ",\"p\":";
        append_number(line, top[i].p);
        line += '}';
    }
    line += ']';
}

void TraceWriter::write_line(std::string& line) {
    if (!f_) throw std::runtime_error(path_ + ": trace written after close");
    line += '\n';
    if (std::fwrite(line.data(), 1, line.size(), f_) != line.size() || std::fflush(f_) != 0)
        throw std::runtime_error(path_ + ": write failed: " + std::strerror(errno));
}

void TraceWriter::begin(const std::vector<int32_t>& prompt, const std::string& attention_path) {
    const Config& c = model_.config();
    std::string& line = line_;
    line = "{\"type\":\"prompt\",\"model\":";
    write_json_string(line, model_.gguf().get_string("general.name", ""));
    line += ",\"n_layer\":" + std::to_string(c.n_layer) + ",\"n_head\":" + std::to_string(c.n_head) +
            ",\"n_vocab\":" + std::to_string(c.n_vocab) + ",\"top_k\":" + std::to_string(opt_.top_k) + ",\"attention\":";
    if (attention_path.empty()) line += "null";
    else write_json_string(line, attention_path);
    line += ",\"tokens\":[";
    for (size_t i = 0; i < prompt.size(); ++i) {
        if (i) line += ',';
        line += "{\"pos\":" + std::to_string(i) + ",";
        append_token(line, prompt[i]);
        line += '}';
    }
    line += "]}";
    write_line(line);
}

void TraceWriter::step(int64_t pos, const float* logits, int32_t chosen_id) {
    const int64_t V = model_.config().n_vocab;
    const DistributionSummary s = summarize_distribution(logits, V, chosen_id, opt_.top_k, order_);
    std::string& line = line_;
    line = "{\"type\":\"step\",\"pos\":" + std::to_string(pos) + ",";
    append_token(line, chosen_id);
    line += ",\"logprob\":";
    append_number(line, s.logprob);
    line += ",\"entropy\":";
    append_number(line, s.entropy);
    line += ",\"top\":";
    append_top(line, s.top);
    if (lens_) {
        if (lens_->position() != pos - 1)
            throw std::runtime_error("trace: the logit lens saw position " + std::to_string(lens_->position()) +
                                     ", but step " + std::to_string(pos) + " needs position " + std::to_string(pos - 1));
        const std::vector<float>& lens_logits = lens_->compute();
        line += ",\"lens\":[";
        for (int64_t l = 0; l < model_.config().n_layer; ++l) {
            if (l) line += ',';
            const DistributionSummary ls = summarize_distribution(lens_logits.data() + l * V, V, -1, opt_.lens_top_k, order_);
            line += "{\"layer\":" + std::to_string(l) + ",\"top\":";
            append_top(line, ls.top);
            line += '}';
        }
        line += ']';
    }
    line += '}';
    write_line(line);
}

void TraceWriter::close() {
    if (!f_) return;
    const bool ok = std::fclose(f_) == 0;
    f_ = nullptr;
    if (!ok) throw std::runtime_error(path_ + ": write failed: " + std::strerror(errno));
}

}  // namespace minigpt
