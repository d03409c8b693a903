#include "analysis/trace.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>

#include <nlohmann/json.hpp>

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

TraceWriter::TraceWriter(const std::string& path, const Model& model, const Tokenizer& tokenizer, const TraceOptions& opt)
    : path_(path), model_(model), tok_(tokenizer), opt_(opt) {
    if (opt_.top_k < 0 || opt_.lens_top_k < 0 || opt_.dla_top_k < 0)
        throw std::runtime_error("trace: top-k must not be negative");
    f_ = std::fopen(path.c_str(), "wb");
    if (!f_) throw std::runtime_error(path + ": cannot create: " + std::strerror(errno));
    if (opt_.logit_lens) lens_ = std::make_unique<LogitLens>(model);
    if (opt_.dla) dla_ = std::make_unique<DlaCapture>(model.config());
    hooks_.add(lens_.get());
    hooks_.add(dla_.get());
}

TraceWriter::~TraceWriter() {
    if (f_) std::fclose(f_);
}

// Probabilities, log-probabilities and entropies carry 7 significant digits:
// the logits they come from are floats.
constexpr int kDigits = 7;

void TraceWriter::add_token(Json& obj, int32_t id) const {
    const std::string bytes = id >= 0 && id < tok_.vocab_size() ? tok_.token_bytes(id) : std::string();
    obj["id"] = id;
    obj["text"] = bytes;  // invalid UTF-8 becomes U+FFFD when written (util/json.h)
    if (!valid_utf8(bytes)) {
        static const char* hex = "0123456789abcdef";
        std::string h;
        for (unsigned char c : bytes) {
            h += hex[c >> 4];
            h += hex[c & 15];
        }
        obj["hex"] = h;
    }
}

Json TraceWriter::top_list(const std::vector<TokenProb>& top) const {
    Json list = Json::array();
    for (const TokenProb& t : top) {
        Json c = Json::object();
        add_token(c, t.id);
        c["p"] = json_rounded(t.p, kDigits);
        list.push_back(std::move(c));
    }
    return list;
}

void TraceWriter::write_line(const Json& obj) {
    if (!f_) throw std::runtime_error(path_ + ": trace written after close");
    std::string line = json_dump(obj);
    line += '\n';
    if (std::fwrite(line.data(), 1, line.size(), f_) != line.size() || std::fflush(f_) != 0)
        throw std::runtime_error(path_ + ": write failed: " + std::strerror(errno));
}

void TraceWriter::begin(const std::vector<int32_t>& prompt, const std::string& attention_path) {
    const Config& c = model_.config();
    Json line = Json::object();
    line["type"] = "prompt";
    line["model"] = model_.gguf().get_string("general.name", "");
    line["n_layer"] = c.n_layer;
    line["n_head"] = c.n_head;
    line["n_vocab"] = c.n_vocab;
    line["top_k"] = opt_.top_k;
    line["attention"] = attention_path.empty() ? Json() : Json(attention_path);
    Json tokens = Json::array();
    for (size_t i = 0; i < prompt.size(); ++i) {
        Json t = Json::object();
        t["pos"] = i;
        add_token(t, prompt[i]);
        tokens.push_back(std::move(t));
    }
    line["tokens"] = std::move(tokens);
    write_line(line);
    last_token_ = prompt.empty() ? -1 : prompt.back();
}

void TraceWriter::step(int64_t pos, const float* logits, int32_t chosen_id) {
    const int64_t V = model_.config().n_vocab;
    const DistributionSummary s = summarize_distribution(logits, V, chosen_id, opt_.top_k, order_);
    Json line = Json::object();
    line["type"] = "step";
    line["pos"] = pos;
    add_token(line, chosen_id);
    line["logprob"] = json_rounded(s.logprob, kDigits);
    line["entropy"] = json_rounded(s.entropy, kDigits);
    line["top"] = top_list(s.top);
    if (lens_) {
        if (lens_->position() != pos - 1)
            throw std::runtime_error("trace: the logit lens saw position " + std::to_string(lens_->position()) +
                                     ", but step " + std::to_string(pos) + " needs position " + std::to_string(pos - 1));
        const std::vector<float>& lens_logits = lens_->compute();
        Json layers = Json::array();
        for (int64_t l = 0; l < model_.config().n_layer; ++l) {
            const DistributionSummary ls = summarize_distribution(lens_logits.data() + l * V, V, -1, opt_.lens_top_k, order_);
            Json layer = Json::object();
            layer["layer"] = l;
            layer["top"] = top_list(ls.top);
            layers.push_back(std::move(layer));
        }
        line["lens"] = std::move(layers);
    }
    if (dla_) line["dla"] = dla_json(pos, logits, chosen_id);
    write_line(line);
    last_token_ = chosen_id;
}

Json TraceWriter::dla_json(int64_t pos, const float* logits, int32_t chosen_id) const {
    if (dla_->position() != pos - 1 || last_token_ < 0)
        throw std::runtime_error("trace: DLA saw position " + std::to_string(dla_->position()) + ", but step " +
                                 std::to_string(pos) + " needs position " + std::to_string(pos - 1));
    const DlaResult r = direct_logit_attribution(model_, *dla_, last_token_, DlaTarget{chosen_id, -1});
    Json heads = Json::array();
    for (int64_t k : r.top_heads(opt_.dla_top_k)) {
        Json h = Json::object();
        h["layer"] = k / r.n_head;
        h["head"] = k % r.n_head;
        h["value"] = json_rounded(r.heads[size_t(k)], kDigits);
        heads.push_back(std::move(h));
    }
    Json d = Json::object();
    d["logit"] = json_rounded(logits[chosen_id], kDigits);
    d["heads"] = std::move(heads);
    return d;
}

void TraceWriter::close() {
    if (!f_) return;
    const bool ok = std::fclose(f_) == 0;
    f_ = nullptr;
    if (!ok) throw std::runtime_error(path_ + ": write failed: " + std::strerror(errno));
}

}  // namespace minigpt
