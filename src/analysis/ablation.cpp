#include "analysis/ablation.h"

#include <algorithm>
#include <stdexcept>

#include "eval/text_windows.h"
#include "runtime/transformer.h"
#include "util/read_file.h"

namespace minigpt {

std::string head_label(HeadRef h) { return "L" + std::to_string(h.layer) + "H" + std::to_string(h.head); }
std::string head_arg(HeadRef h) { return std::to_string(h.layer) + "." + std::to_string(h.head); }

namespace {

std::string trim(const std::string& s) {
    const size_t b = s.find_first_not_of(" \t");
    if (b == std::string::npos) return "";
    return s.substr(b, s.find_last_not_of(" \t") - b + 1);
}

bool all_digits(const std::string& s) {
    return !s.empty() && s.size() <= 6 && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

}  // namespace

std::vector<HeadRef> parse_head_list(const std::string& spec, int64_t n_layer, int64_t n_head, const std::string& option) {
    std::vector<HeadRef> heads;
    size_t start = 0;
    while (start <= spec.size()) {
        size_t comma = spec.find(',', start);
        if (comma == std::string::npos) comma = spec.size();
        const std::string item = trim(spec.substr(start, comma - start));
        start = comma + 1;
        if (item.empty()) continue;
        const size_t dot = item.find('.');
        const std::string l = dot == std::string::npos ? item : item.substr(0, dot);
        const std::string h = dot == std::string::npos ? "" : item.substr(dot + 1);
        if (!all_digits(l) || (h != "*" && !all_digits(h)))
            throw std::runtime_error(option + ": \"" + item +
                                     "\" is not a head: write L.H or L.* (layer and head from 0), e.g. 0.3,2.*");
        const int layer = std::stoi(l);
        if (layer >= n_layer)
            throw std::runtime_error(option + ": \"" + item + "\": the model has " + std::to_string(n_layer) +
                                     " layers (0.." + std::to_string(n_layer - 1) + ")");
        std::vector<int> hs;
        if (h == "*") {
            for (int i = 0; i < n_head; ++i) hs.push_back(i);
        } else {
            const int head = std::stoi(h);
            if (head >= n_head)
                throw std::runtime_error(option + ": \"" + item + "\": the model has " + std::to_string(n_head) +
                                         " heads per layer (0.." + std::to_string(n_head - 1) + ")");
            hs.push_back(head);
        }
        for (int i : hs) {
            const HeadRef r{layer, i};
            if (std::find(heads.begin(), heads.end(), r) == heads.end()) heads.push_back(r);
        }
    }
    if (heads.empty()) throw std::runtime_error(option + ": no heads given (write L.H or L.*, e.g. 0.3,2.*)");
    return heads;
}

AblationMode parse_ablation_mode(const std::string& s) {
    if (s == "zero") return AblationMode::Zero;
    if (s == "mean") return AblationMode::Mean;
    throw std::runtime_error("--ablate-mode must be zero or mean, got \"" + s + "\"");
}

const char* ablation_mode_name(AblationMode m) { return m == AblationMode::Zero ? "zero" : "mean"; }

namespace {

// Sums hook_z rows per layer (in double) and counts the positions.
class ZSums : public ForwardHooks {
public:
    ZSums(int64_t n_layer, int64_t d) : d_(d), sums_(size_t(n_layer * d), 0.0), rows_(size_t(n_layer), 0) {}
    uint32_t wanted() const override { return hook_bit(Hook::Z); }
    void on(const HookView& v) override {
        double* s = sums_.data() + v.layer * d_;
        for (int64_t i = 0; i < v.rows; ++i) {
            const float* r = v.row(i);
            for (int64_t c = 0; c < d_; ++c) s[c] += r[c];
        }
        rows_[size_t(v.layer)] += v.rows;
    }
    std::vector<float> means() const {
        std::vector<float> m(sums_.size());
        for (size_t i = 0; i < m.size(); ++i) m[i] = float(sums_[i] / double(rows_[i / size_t(d_)]));
        return m;
    }

private:
    int64_t d_;
    std::vector<double> sums_;
    std::vector<int64_t> rows_;
};

}  // namespace

std::vector<float> mean_head_outputs(const Model& model, const std::vector<std::vector<int32_t>>& windows, int n_threads) {
    const Config& c = model.config();
    size_t longest = 0;
    for (const auto& w : windows) longest = std::max(longest, w.size());
    if (longest == 0) throw std::runtime_error("mean ablation: the reference text has no tokens");
    TransformerOptions opt;
    opt.n_ctx = int64_t(longest);
    opt.n_threads = n_threads;
    Transformer tf(model, opt);
    ZSums sums(c.n_layer, c.n_embd);
    tf.set_hooks(&sums);
    for (const auto& w : windows) {
        if (w.empty()) continue;
        tf.reset();
        tf.forward(w.data(), int64_t(w.size()));
    }
    return sums.means();
}

HeadAblation::HeadAblation(const Config& cfg, AblationMode mode, std::vector<float> means)
    : n_layer_(cfg.n_layer),
      n_embd_(cfg.n_embd),
      head_dim_(cfg.head_dim()),
      mode_(mode),
      means_(std::move(means)),
      by_layer_(size_t(cfg.n_layer)) {
    if (mode_ == AblationMode::Mean && int64_t(means_.size()) != n_layer_ * n_embd_)
        throw std::runtime_error("mean ablation needs (n_layer, n_embd) = " + std::to_string(n_layer_ * n_embd_) +
                                 " mean values, got " + std::to_string(means_.size()));
}

void HeadAblation::set_heads(const std::vector<HeadRef>& heads) {
    for (auto& l : by_layer_) l.clear();
    for (const HeadRef& h : heads) {
        if (h.layer < 0 || h.layer >= n_layer_ || h.head < 0 || h.head >= n_embd_ / head_dim_)
            throw std::runtime_error("ablation: head " + head_arg(h) + " does not exist");
        by_layer_[size_t(h.layer)].push_back(h.head);
    }
    heads_ = heads;
}

void HeadAblation::on(const HookView& v) {
    if (v.hook != Hook::Z) return;
    for (int h : by_layer_[size_t(v.layer)]) {
        const int64_t c0 = h * head_dim_;
        if (mode_ == AblationMode::Zero) {
            for (int64_t i = 0; i < v.rows; ++i) std::fill(v.row(i) + c0, v.row(i) + c0 + head_dim_, 0.f);
        } else {
            const float* m = means_.data() + v.layer * n_embd_ + c0;
            for (int64_t i = 0; i < v.rows; ++i) std::copy(m, m + head_dim_, v.row(i) + c0);
        }
    }
}

std::vector<HeadRef> ablation_heads(const AblationRequest& request, const Config& cfg) {
    if (!request.mean_file.empty() && (request.heads.empty() || request.mode != AblationMode::Mean))
        throw std::runtime_error("--mean-file needs --ablate with --ablate-mode mean");
    if (request.heads.empty()) return {};
    return parse_head_list(request.heads, cfg.n_layer, cfg.n_head, "--ablate");
}

std::vector<float> ablation_means(const Model& model, const std::string& mean_file,
                                  const std::vector<std::vector<int32_t>>& own, int64_t window, int n_threads,
                                  const Tokenizer* tokenizer) {
    if (mean_file.empty()) return mean_head_outputs(model, own, n_threads);
    std::unique_ptr<Tokenizer> made;
    if (!tokenizer) tokenizer = (made = make_tokenizer(model.tokenizer_spec())).get();
    const std::vector<int32_t> ids = tokenizer->encode(read_file(mean_file, "--mean-file"));
    if (ids.empty()) throw std::runtime_error(mean_file + ": the text has no tokens (--mean-file)");
    const int32_t bos = tokenizer->add_bos() && tokenizer->bos_id() >= 0 ? tokenizer->bos_id() : -1;
    return mean_head_outputs(model, split_windows(ids, window, bos), n_threads);
}

std::unique_ptr<HeadAblation> ablation_from_options(const Model& model, const AblationRequest& request,
                                                    const std::vector<std::vector<int32_t>>& own, int64_t window,
                                                    int n_threads, const Tokenizer* tokenizer) {
    const std::vector<HeadRef> heads = ablation_heads(request, model.config());
    if (heads.empty()) return nullptr;
    std::vector<float> means;
    if (request.mode == AblationMode::Mean)
        means = ablation_means(model, request.mean_file, own, window, n_threads, tokenizer);
    auto ablation = std::make_unique<HeadAblation>(model.config(), request.mode, std::move(means));
    ablation->set_heads(heads);
    return ablation;
}

}  // namespace minigpt
