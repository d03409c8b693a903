#include "analysis/dla.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>

#include "analysis/ablation.h"

namespace minigpt {

DlaCapture::DlaCapture(const Config& cfg)
    : n_layer_(cfg.n_layer),
      d_(cfg.n_embd),
      z_(size_t(cfg.n_layer * cfg.n_embd), 0.f),
      mlp_(size_t(cfg.n_layer * cfg.n_embd), 0.f),
      resid_(size_t(cfg.n_embd), 0.f) {}

void DlaCapture::on(const HookView& v) {
    // A prefill split into batches emits each layer once per batch; the last
    // batch's last row, written last, is the one kept.
    const float* last = v.row(v.rows - 1);
    switch (v.hook) {
        case Hook::Z: std::copy(last, last + d_, z_.begin() + v.layer * d_); break;
        case Hook::MlpOut: std::copy(last, last + d_, mlp_.begin() + v.layer * d_); break;
        case Hook::ResidPost:
            if (v.layer == n_layer_ - 1) {
                std::copy(last, last + d_, resid_.begin());
                pos_ = v.pos0 + v.rows - 1;
            }
            break;
        default: break;
    }
}

double DlaResult::total() const {
    double s = embed + pos_embed + ln_final_bias;
    for (double v : heads) s += v;
    for (double v : attn_bias) s += v;
    for (double v : mlp) s += v;
    return s;
}

std::vector<std::pair<std::string, double>> DlaResult::components() const {
    std::vector<std::pair<std::string, double>> out{{"embed", embed}, {"pos_embed", pos_embed}};
    for (int64_t l = 0; l < n_layer; ++l) {
        for (int64_t h = 0; h < n_head; ++h)
            out.emplace_back(head_label(HeadRef{int(l), int(h)}), heads[size_t(l * n_head + h)]);
        out.emplace_back("L" + std::to_string(l) + ".attn_bias", attn_bias[size_t(l)]);
        out.emplace_back("L" + std::to_string(l) + ".mlp", mlp[size_t(l)]);
    }
    out.emplace_back("ln_final_bias", ln_final_bias);
    return out;
}

std::vector<int64_t> DlaResult::top_heads(int64_t k) const {
    std::vector<int64_t> idx(heads.size());
    std::iota(idx.begin(), idx.end(), 0);
    std::stable_sort(idx.begin(), idx.end(),
                     [&](int64_t a, int64_t b) { return std::fabs(heads[size_t(a)]) > std::fabs(heads[size_t(b)]); });
    idx.resize(size_t(std::clamp<int64_t>(k, 0, int64_t(idx.size()))));
    return idx;
}

namespace {

// (u_A - u_B) as doubles: the unembedding direction of the target.
std::vector<double> unembedding_direction(const Model& model, const DlaTarget& t) {
    const Config& c = model.config();
    const Matrix& U = model.weights().output;
    auto check = [&](int32_t id) {
        if (id < 0 || id >= c.n_vocab)
            throw std::runtime_error("DLA: token id " + std::to_string(id) + " is outside the vocabulary (0.." +
                                     std::to_string(c.n_vocab - 1) + ")");
    };
    check(t.token);
    if (t.contrast != -1) check(t.contrast);
    std::vector<float> row(static_cast<size_t>(c.n_embd));
    matrix_row(row.data(), U, t.token);
    std::vector<double> u(row.begin(), row.end());
    if (t.contrast >= 0) {
        matrix_row(row.data(), U, t.contrast);
        for (size_t i = 0; i < u.size(); ++i) u[i] -= double(row[i]);
    }
    return u;
}

double dot(const double* a, const float* b, int64_t n) {
    double s = 0;
    for (int64_t i = 0; i < n; ++i) s += a[i] * double(b[i]);
    return s;
}

}  // namespace

DlaResult direct_logit_attribution(const Model& model, const DlaCapture& cap, int32_t token_at_pos,
                                   const DlaTarget& target) {
    const Config& c = model.config();
    const Weights& w = model.weights();
    const int64_t d = c.n_embd, hd = c.head_dim();
    if (cap.position() < 0) throw std::runtime_error("DLA: no forward pass was captured");
    if (token_at_pos < 0 || token_at_pos >= c.n_vocab)
        throw std::runtime_error("DLA: token id " + std::to_string(token_at_pos) + " is outside the vocabulary");
    const std::vector<double> u = unembedding_direction(model, target);

    DlaResult r;
    r.n_layer = c.n_layer;
    r.n_head = c.n_head;
    r.pos = cap.position();
    r.target = target;

    // The frozen LayerNorm scale of this position, from the real residual.
    const float* x = cap.resid_final();
    double mean = 0, var = 0;
    for (int64_t i = 0; i < d; ++i) mean += x[i];
    mean /= double(d);
    for (int64_t i = 0; i < d; ++i) var += (x[i] - mean) * (x[i] - mean);
    r.ln_scale = std::sqrt(var / double(d) + double(c.ln_eps));

    // Centring a component and dotting with g = w_f ⊙ u equals dotting the raw
    // component with g - mean(g); dividing by σ once gives the direction every
    // component is read along.
    std::vector<double> g(static_cast<size_t>(d));
    for (int64_t i = 0; i < d; ++i) g[size_t(i)] = double(w.output_norm_w.data[i]) * u[size_t(i)];
    const double g_mean = std::accumulate(g.begin(), g.end(), 0.0) / double(d);
    for (double& v : g) v = (v - g_mean) / r.ln_scale;
    for (int64_t i = 0; i < d; ++i) r.ln_final_bias += double(w.output_norm_b.data[i]) * u[size_t(i)];

    std::vector<float> row(static_cast<size_t>(d));
    matrix_row(row.data(), w.token_embd, token_at_pos);
    r.embed = dot(g.data(), row.data(), d);
    matrix_row(row.data(), w.position_embd, r.pos);
    r.pos_embed = dot(g.data(), row.data(), d);

    r.heads.assign(size_t(c.n_layer * c.n_head), 0.0);
    r.attn_bias.assign(size_t(c.n_layer), 0.0);
    r.mlp.assign(size_t(c.n_layer), 0.0);
    std::vector<double> v(static_cast<size_t>(d));
    for (int64_t l = 0; l < c.n_layer; ++l) {
        const LayerWeights& lw = w.layers[size_t(l)];
        // v = W_Oᵀ g: attn_out is (out, in), so head h's write z_h · W_O[h] read
        // along g is z_h · v[h*hd .. (h+1)*hd).
        std::fill(v.begin(), v.end(), 0.0);
        for (int64_t o = 0; o < d; ++o) {
            matrix_row(row.data(), lw.attn_out, o);
            const double go = g[size_t(o)];
            for (int64_t i = 0; i < d; ++i) v[size_t(i)] += go * double(row[size_t(i)]);
        }
        const float* z = cap.z(l);
        for (int64_t h = 0; h < c.n_head; ++h) {
            double s = 0;
            for (int64_t i = h * hd; i < (h + 1) * hd; ++i) s += double(z[i]) * v[size_t(i)];
            r.heads[size_t(l * c.n_head + h)] = s;
        }
        r.attn_bias[size_t(l)] = dot(g.data(), lw.attn_out_b.data, d);
        r.mlp[size_t(l)] = dot(g.data(), cap.mlp(l), d);
    }
    return r;
}

}  // namespace minigpt
