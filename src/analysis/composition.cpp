#include "analysis/composition.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

#include "kernels/blas.h"

namespace minigpt {

namespace {

// Every column of a (rows x cols) row-major matrix minus its mean: the reading
// weights after fold_ln (LayerNorm's output has zero mean, so that part of the
// weights never acts).
void center_columns(std::vector<double>& m, int64_t rows, int64_t cols) {
    std::vector<double> mean(size_t(cols), 0.0);
    for (int64_t i = 0; i < rows; ++i)
        for (int64_t j = 0; j < cols; ++j) mean[size_t(j)] += m[size_t(i * cols + j)];
    for (double& x : mean) x /= double(rows);
    for (int64_t i = 0; i < rows; ++i)
        for (int64_t j = 0; j < cols; ++j) m[size_t(i * cols + j)] -= mean[size_t(j)];
}

void center(double* x, int64_t n) {
    double mean = 0;
    for (int64_t i = 0; i < n; ++i) mean += x[i];
    mean /= double(n);
    for (int64_t i = 0; i < n; ++i) x[i] -= mean;
}

// One layer's processed attention weights, its heads side by side: columns
// h*d_head .. (h+1)*d_head-1 of wq / wk / wv are head h's W_Q / W_K / W_V (key and
// value heads repeated to the query heads that read them), rows of wo likewise its W_O.
struct LayerAttention {
    std::vector<double> wq, wk, wv;  // (d, d): row = residual-stream coordinate
    std::vector<double> wo;          // (d, d): column = residual-stream coordinate
};

LayerAttention read_layer(const Model& model, int64_t l, bool centred) {
    const Config& c = model.config();
    const LayerWeights& w = model.weights().layers[size_t(l)];
    const int64_t d = c.n_embd, H = c.n_head, dh = d / H;
    // The fused QKV holds q (d rows), then k and v (n_kv * d_head rows each).
    const int64_t kv_rows = (w.attn_qkv.rows - d) / 2, n_kv = kv_rows / dh;
    if (w.attn_qkv.rows != d + 2 * kv_rows || kv_rows % dh != 0 || n_kv < 1 || H % n_kv != 0 ||
        w.attn_qkv.cols != d || w.attn_out.rows != d || w.attn_out.cols != d)
        throw std::runtime_error("layer " + std::to_string(l) + ": attention weights of unexpected shape");
    const int64_t group = H / n_kv;
    LayerAttention a;
    a.wq.assign(size_t(d * d), 0.0);
    a.wk.assign(size_t(d * d), 0.0);
    a.wv.assign(size_t(d * d), 0.0);
    a.wo.assign(size_t(d * d), 0.0);
    std::vector<float> row(static_cast<size_t>(d));
    const float* g = w.attn_norm_w.data;  // fold_ln: ln_1's weight scales the inputs of W_Q, W_K, W_V
    for (int64_t r = 0; r < w.attn_qkv.rows; ++r) {
        matrix_row(row.data(), w.attn_qkv, r);  // output r of the QKV projection = one column of W_Q | W_K | W_V
        if (r < d) {
            for (int64_t i = 0; i < d; ++i) a.wq[size_t(i * d + r)] = double(g[i]) * row[size_t(i)];
            continue;
        }
        const bool is_k = r < d + kv_rows;
        const int64_t kr = is_k ? r - d : r - d - kv_rows, kv_head = kr / dh, col = kr % dh;
        std::vector<double>& dst = is_k ? a.wk : a.wv;
        for (int64_t h = kv_head * group; h < (kv_head + 1) * group; ++h)
            for (int64_t i = 0; i < d; ++i) dst[size_t(i * d + h * dh + col)] = double(g[i]) * row[size_t(i)];
    }
    // attn_out is (d outputs, d inputs): head h's W_O row j is input column h*d_head + j.
    for (int64_t out = 0; out < d; ++out) {
        matrix_row(row.data(), w.attn_out, out);
        for (int64_t j = 0; j < d; ++j) a.wo[size_t(j * d + out)] = row[size_t(j)];
    }
    if (centred) {
        center_columns(a.wq, d, d);
        center_columns(a.wk, d, d);
        center_columns(a.wv, d, d);
        for (int64_t j = 0; j < d; ++j) center(&a.wo[size_t(j * d)], d);  // center_writing_weights
    }
    return a;
}

// The R of a thin QR of the (d x dh) matrix X(i, j) = x[i * si + j * sj]: X = Q R with
// orthonormal Q, so |M X^T|_F = |M R^T|_F and |X^T M|_F = |R M|_F for every M.
// Returns R (dh x dh, upper triangular, row-major).
std::vector<double> r_factor(const double* x, int64_t si, int64_t sj, int64_t d, int64_t dh) {
    std::vector<double> colmajor(size_t(d * dh));
    for (int64_t j = 0; j < dh; ++j)
        for (int64_t i = 0; i < d; ++i) colmajor[size_t(j * d + i)] = x[i * si + j * sj];
    const int m = int(d), n = int(dh), lwork = int(dh * 64);
    std::vector<double> tau(static_cast<size_t>(dh)), work(static_cast<size_t>(lwork));
    int info = 0;
    blas::dgeqrf(&m, &n, colmajor.data(), &m, tau.data(), work.data(), &lwork, &info);
    if (info != 0) throw std::runtime_error("LAPACK dgeqrf failed (info " + std::to_string(info) + ")");
    std::vector<double> r(size_t(dh * dh), 0.0);
    for (int64_t i = 0; i < dh; ++i)
        for (int64_t j = i; j < dh; ++j) r[size_t(i * dh + j)] = colmajor[size_t(j * d + i)];
    return r;
}

// |A B^T|_F for two (n x n) row-major matrices.
double norm_abt(const std::vector<double>& a, const std::vector<double>& b, int64_t n) {
    std::vector<double> p(size_t(n * n));
    blas::dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(n), int(n), int(n), 1.0, a.data(), int(n), b.data(),
                int(n), 0.0, p.data(), int(n));
    double s = 0;
    for (double v : p) s += v * v;
    return std::sqrt(s);
}

// sum(lambda) / sum(|lambda|) over the eigenvalues of the (n x n) matrix m (overwritten).
double copying_score(std::vector<double>& m, int64_t n) {
    const int nn = int(n), one = 1, lwork = int(8 * n);
    std::vector<double> wr(static_cast<size_t>(n)), wi(static_cast<size_t>(n)), work(static_cast<size_t>(lwork));
    double unused = 0;
    int info = 0;
    // Row-major m is m^T in LAPACK's column order: the same eigenvalues.
    blas::dgeev("N", "N", &nn, m.data(), &nn, wr.data(), wi.data(), &unused, &one, &unused, &one, work.data(), &lwork,
           &info, 1, 1);
    if (info != 0) throw std::runtime_error("LAPACK dgeev failed (info " + std::to_string(info) + ")");
    double sum = 0, abs_sum = 0;
    for (int64_t i = 0; i < n; ++i) sum += wr[size_t(i)], abs_sum += std::hypot(wr[size_t(i)], wi[size_t(i)]);
    return abs_sum > 0 ? sum / abs_sum : 0.0;
}

// G = sum over t in ids of u_t e_t^T (d x d): u_t = token t's processed unembedding
// column (ln_final's weight folded in, centred over d_model, the vocabulary's mean
// subtracted), e_t its processed embedding row. W_E[S] OV W_U[:,S] = E_S (W_V W_O) U_S
// has the nonzero eigenvalues of W_O (U_S E_S) W_V = W_O G W_V.
std::vector<double> unembed_embed(const Model& model, const std::vector<int32_t>& ids, bool centred) {
    const Weights& w = model.weights();
    const int64_t d = model.config().n_embd, V = model.config().n_vocab, chunk = 2048;
    const float* gf = w.output_norm_w.data;
    std::vector<float> row(static_cast<size_t>(d));
    auto unembed = [&](int64_t t, double* u) {
        matrix_row(row.data(), w.output, t);
        for (int64_t i = 0; i < d; ++i) u[i] = double(gf[i]) * row[size_t(i)];
        if (centred) center(u, d);
    };
    std::vector<double> mean_u(size_t(d), 0.0), u(static_cast<size_t>(d));
    if (centred) {  // center_unembed: the mean over the whole vocabulary, whatever S is
        for (int64_t t = 0; t < V; ++t) {
            unembed(t, u.data());
            for (int64_t i = 0; i < d; ++i) mean_u[size_t(i)] += u[size_t(i)];
        }
        for (double& x : mean_u) x /= double(V);
    }
    std::vector<double> g(size_t(d * d), 0.0), U(size_t(chunk * d)), E(size_t(chunk * d));
    for (size_t start = 0; start < ids.size(); start += size_t(chunk)) {
        const int64_t n = std::min<int64_t>(chunk, int64_t(ids.size() - start));
        for (int64_t k = 0; k < n; ++k) {
            const int64_t t = ids[start + size_t(k)];
            double* ut = &U[size_t(k * d)];
            unembed(t, ut);
            for (int64_t i = 0; i < d; ++i) ut[i] -= mean_u[size_t(i)];
            matrix_row(row.data(), w.token_embd, t);
            double* et = &E[size_t(k * d)];
            for (int64_t i = 0; i < d; ++i) et[i] = row[size_t(i)];
            if (centred) center(et, d);  // center_writing_weights on W_E
        }
        blas::dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, int(d), int(d), int(n), 1.0, U.data(), int(d), E.data(),
                    int(d), 1.0, g.data(), int(d));
    }
    return g;
}

// The low-rank factors of every head, in float for the pair GEMMs: numerator of each
// score = |F_src^T H_dst|_F with F (d x d_head per head, stored transposed) and H per kind.
struct Factors {
    int64_t rows = 0;                // n_layer * n_head * d_head
    std::vector<float> f;            // (rows, d): head i's rows R_V W_O
    std::vector<float> hq, hk, hv;   // (d, rows): head i's columns W_Q R_K^T, W_K R_Q^T, W_V R_{W_O^T}^T
};

// Writes the (d x dh) double block p into columns col0.. of the (d x ld) float matrix dst.
void put_columns(std::vector<float>& dst, int64_t ld, int64_t col0, const std::vector<double>& p, int64_t d, int64_t dh) {
    for (int64_t i = 0; i < d; ++i)
        for (int64_t j = 0; j < dh; ++j) dst[size_t(i * ld + col0 + j)] = float(p[size_t(i * dh + j)]);
}

// One layer: the factors of its heads, their norms and copying scores.
void layer_factors(const Model& model, int64_t l, bool centred, const std::vector<double>& g, Factors& fx,
                   CircuitScores& out) {
    const int64_t d = model.config().n_embd, H = model.config().n_head, dh = d / H;
    const LayerAttention a = read_layer(model, l, centred);
    std::vector<double> ga(size_t(d * d)), p(size_t(d * dh)), f(size_t(dh * d)), copy(size_t(dh * dh));
    // G W_V for every head of the layer at once (d x d).
    blas::dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(d), int(d), int(d), 1.0, g.data(), int(d), a.wv.data(),
                int(d), 0.0, ga.data(), int(d));
    auto right = [&](const double* x, const std::vector<double>& r, std::vector<float>& dst, int64_t i) {
        blas::dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(d), int(dh), int(dh), 1.0, x, int(d), r.data(), int(dh),
                    0.0, p.data(), int(dh));
        put_columns(dst, fx.rows, i * dh, p, d, dh);
    };
    for (int64_t h = 0; h < H; ++h) {
        const int64_t i = l * H + h;
        const double *q = &a.wq[size_t(h * dh)], *k = &a.wk[size_t(h * dh)], *v = &a.wv[size_t(h * dh)];
        const double* o = &a.wo[size_t(h * dh * d)];  // (dh x d), row stride d
        const std::vector<double> rq = r_factor(q, d, 1, d, dh), rk = r_factor(k, d, 1, d, dh),
                                  rv = r_factor(v, d, 1, d, dh), ro = r_factor(o, 1, d, d, dh);  // W_O^T = Q R_O
        out.ov_norm[size_t(i)] = norm_abt(rv, ro, dh);  // |W_V W_O| = |R_V R_O^T|
        out.qk_norm[size_t(i)] = norm_abt(rq, rk, dh);  // |W_Q W_K^T| = |R_Q R_K^T|
        blas::dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(dh), int(d), int(dh), 1.0, rv.data(), int(dh), o,
                    int(d), 0.0, f.data(), int(d));
        for (int64_t j = 0; j < dh * d; ++j) fx.f[size_t(i * dh * d + j)] = float(f[size_t(j)]);
        right(q, rk, fx.hq, i);
        right(k, rq, fx.hk, i);
        right(v, ro, fx.hv, i);
        blas::dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(dh), int(dh), int(d), 1.0, o, int(d),
                    &ga[size_t(h * dh)], int(d), 0.0, copy.data(), int(dh));  // W_O G W_V
        out.copy[size_t(i)] = copying_score(copy, dh);
    }
}

// Scores of every head of layer l1 against every head of the later layers, one kind.
void pair_scores(const Factors& fx, const std::vector<float>& hkind, const std::vector<double>& src_norm,
                 const std::vector<double>& dst_norm, int64_t l1, int64_t L, int64_t H, int64_t d, int64_t dh,
                 std::vector<double>& scores) {
    const int64_t N = L * H, m = (L - 1 - l1) * H * dh, first = (l1 + 1) * H;
    if (m == 0) return;
    std::vector<float> prod(size_t(H * dh * m));
    blas::sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(H * dh), int(m), int(d), 1.0f,
                &fx.f[size_t(l1 * H * dh * d)], int(d), &hkind[size_t(first * dh)], int(fx.rows), 0.0f, prod.data(),
                int(m));
    for (int64_t a = 0; a < H; ++a) {
        const int64_t src = l1 * H + a;
        for (int64_t b = 0; b < (L - 1 - l1) * H; ++b) {
            const int64_t dst = first + b;
            double s = 0;  // |dh x dh block|_F^2, accumulated in double
            for (int64_t r = 0; r < dh; ++r) {
                const float* p = &prod[size_t((a * dh + r) * m + b * dh)];
                for (int64_t c = 0; c < dh; ++c) s += double(p[c]) * double(p[c]);
            }
            const double den = src_norm[size_t(src)] * dst_norm[size_t(dst)];
            scores[size_t(src * N + dst)] = den > 0 ? std::sqrt(s) / den : 0.0;
        }
    }
}

}  // namespace

std::vector<int32_t> copy_token_sample(int64_t n_vocab, int64_t n) {
    if (n <= 0 || n >= n_vocab) n = n_vocab;
    std::vector<int32_t> ids(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) ids[size_t(i)] = int32_t(i * n_vocab / n);
    return ids;
}

CircuitScores composition_scores(const Model& model, const CircuitOptions& opt,
                                 const std::function<void(int64_t, int64_t)>& progress) {
    const Config& c = model.config();
    const int64_t L = c.n_layer, H = c.n_head, d = c.n_embd, dh = d / H, N = L * H;
    if (opt.copy_tokens < 0 || opt.copy_tokens > c.n_vocab)
        throw std::runtime_error("copy_tokens " + std::to_string(opt.copy_tokens) + " outside [0, " +
                                 std::to_string(c.n_vocab) + "]");
    CircuitScores out;
    out.n_layer = L;
    out.n_head = H;
    out.q.assign(size_t(N * N), 0.0);
    out.k = out.v = out.q;
    out.copy.assign(size_t(N), 0.0);
    out.ov_norm = out.qk_norm = out.copy;
    const std::vector<int32_t> ids = copy_token_sample(c.n_vocab, opt.copy_tokens);
    out.copy_token_count = int64_t(ids.size());
    const std::vector<double> g = unembed_embed(model, ids, opt.center);

    Factors fx;
    fx.rows = N * dh;
    fx.f.assign(size_t(fx.rows * d), 0.0f);
    fx.hq = fx.hk = fx.hv = fx.f;
    const int64_t total = 2 * L;
    for (int64_t l = 0; l < L; ++l) {
        layer_factors(model, l, opt.center, g, fx, out);
        if (progress) progress(l + 1, total);
    }
    for (int64_t l1 = 0; l1 < L; ++l1) {
        pair_scores(fx, fx.hq, out.ov_norm, out.qk_norm, l1, L, H, d, dh, out.q);
        pair_scores(fx, fx.hk, out.ov_norm, out.qk_norm, l1, L, H, d, dh, out.k);
        pair_scores(fx, fx.hv, out.ov_norm, out.ov_norm, l1, L, H, d, dh, out.v);
        if (progress) progress(L + l1 + 1, total);
    }
    return out;
}

}  // namespace minigpt
