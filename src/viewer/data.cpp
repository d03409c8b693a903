#include "viewer/data.h"
#include "util/read_file.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace minigpt {

uint8_t quantize_attention_weight(float w) {
    if (!(w > 0)) return 0;  // also NaN
    if (w >= 1) return 255;
    return uint8_t(std::lround(255.0 * std::sqrt(double(w))));
}

namespace {

// [{"id","text","p"},...] -> [[id,text,p],...]
Json compact_candidates(const Json& list, const std::string& where) {
    Json out = Json::array();
    for (const Json& c : json_array(list, where)) {
        Json item = Json::array();
        item.push_back(json_int(json_member(c, "id", where), where + " id"));
        item.push_back(json_string(json_member(c, "text", where), where + " text"));
        const Json& p = json_member(c, "p", where);
        item.push_back(p.is_null() ? Json() : Json(json_number(p, where + " p")));
        out.push_back(std::move(item));
    }
    return out;
}

Json number_or_null(const Json& v, const std::string& what) {
    return v.is_null() ? Json() : Json(json_number(v, what));
}

}  // namespace

ViewerTrace read_viewer_trace(const std::string& path) {
    const std::string text = read_file(path);
    ViewerTrace tr;
    bool have_prompt = false;
    size_t line_no = 0;
    for (size_t at = 0; at < text.size();) {
        size_t end = text.find('\n', at);
        if (end == std::string::npos) end = text.size();
        const std::string_view line(text.data() + at, end - at);
        at = end + 1;
        ++line_no;
        if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
        const std::string where = path + ":" + std::to_string(line_no);
        const Json v = json_parse(line, where);
        if (!v.is_object()) throw std::runtime_error(where + ": expected a JSON object per line");
        const std::string& type = json_string(json_member(v, "type", where), where + " type");
        if (type == "prompt") {
            if (have_prompt) throw std::runtime_error(where + ": a second \"prompt\" line (one trace per file)");
            have_prompt = true;
            if (const Json* m = json_find(v, "model"); m && m->is_string()) tr.model = json_string(*m, where);
            tr.n_layer = json_int(json_member(v, "n_layer", where), where + " n_layer");
            tr.n_head = json_int(json_member(v, "n_head", where), where + " n_head");
            if (const Json* a = json_find(v, "attention"); a && !a->is_null()) tr.attention_path = json_string(*a, where + " attention");
            for (const Json& t : json_array(json_member(v, "tokens", where), where + " tokens")) {
                const int64_t pos = json_int(json_member(t, "pos", where), where + " pos");
                if (pos != int64_t(tr.ids.size()))
                    throw std::runtime_error(where + ": prompt token at pos " + std::to_string(pos) + ", expected " +
                                             std::to_string(tr.ids.size()));
                tr.ids.push_back(int32_t(json_int(json_member(t, "id", where), where + " id")));
                tr.texts.push_back(json_string(json_member(t, "text", where), where + " text"));
                if (const Json* h = json_find(t, "hex"); h && h->is_string()) tr.hex[std::to_string(pos)] = *h;
                tr.steps.push_back(nullptr);
            }
            tr.n_prompt = int64_t(tr.ids.size());
        } else if (type == "step") {
            if (!have_prompt) throw std::runtime_error(where + ": a \"step\" line before the \"prompt\" line");
            const int64_t pos = json_int(json_member(v, "pos", where), where + " pos");
            if (pos != int64_t(tr.ids.size()))
                throw std::runtime_error(where + ": step at pos " + std::to_string(pos) + ", expected " +
                                         std::to_string(tr.ids.size()) + " (steps follow the prompt, one per position)");
            tr.ids.push_back(int32_t(json_int(json_member(v, "id", where), where + " id")));
            tr.texts.push_back(json_string(json_member(v, "text", where), where + " text"));
            if (const Json* h = json_find(v, "hex"); h && h->is_string()) tr.hex[std::to_string(pos)] = *h;
            Json s = Json::object();
            s["id"] = tr.ids.back();
            s["logprob"] = number_or_null(json_member(v, "logprob", where), where + " logprob");
            s["entropy"] = number_or_null(json_member(v, "entropy", where), where + " entropy");
            s["top"] = compact_candidates(json_member(v, "top", where), where + " top");
            if (const Json* lens = json_find(v, "lens")) {
                Json layers = Json::array();
                for (const Json& l : json_array(*lens, where + " lens")) {
                    const int64_t layer = json_int(json_member(l, "layer", where), where + " lens layer");
                    if (layer != int64_t(layers.size()))
                        throw std::runtime_error(where + ": lens layer " + std::to_string(layer) + ", expected " +
                                                 std::to_string(layers.size()));
                    layers.push_back(compact_candidates(json_member(l, "top", where), where + " lens top"));
                }
                s["lens"] = std::move(layers);
            }
            if (const Json* dla = json_find(v, "dla")) {  // generate --trace --dla
                Json heads = Json::array();
                for (const Json& h : json_array(json_member(*dla, "heads", where), where + " dla heads")) {
                    const int64_t layer = json_int(json_member(h, "layer", where), where + " dla layer");
                    const int64_t head = json_int(json_member(h, "head", where), where + " dla head");
                    if (layer < 0 || layer >= tr.n_layer || head < 0 || head >= tr.n_head)
                        throw std::runtime_error(where + ": dla head L" + std::to_string(layer) + "H" + std::to_string(head) +
                                                 " is not in the model's " + std::to_string(tr.n_layer) + " x " +
                                                 std::to_string(tr.n_head) + " heads");
                    heads.push_back(Json::array({layer, head, number_or_null(json_member(h, "value", where), where + " dla value")}));
                }
                s["dla"] = {{"logit", number_or_null(json_member(*dla, "logit", where), where + " dla logit")},
                            {"heads", std::move(heads)}};
            }
            tr.steps.push_back(std::move(s));
        } else {
            throw std::runtime_error(where + ": unknown line type \"" + type + "\" (expected \"prompt\" or \"step\")");
        }
    }
    if (!have_prompt) throw std::runtime_error(path + ": no \"prompt\" line: not a minigpt trace (generate --trace)");
    if (tr.ids.empty()) throw std::runtime_error(path + ": the trace has no tokens");
    return tr;
}

void check_attention_matches_trace(const AttentionFile& att, const ViewerTrace& trace, const std::string& att_path) {
    if (att.n_layer() != trace.n_layer || att.n_head() != trace.n_head)
        throw std::runtime_error(att_path + ": " + std::to_string(att.n_layer()) + " layers x " +
                                 std::to_string(att.n_head()) + " heads, but the trace's model has " +
                                 std::to_string(trace.n_layer) + " x " + std::to_string(trace.n_head));
    if (att.n_tokens() > int64_t(trace.ids.size()))
        throw std::runtime_error(att_path + ": attention for " + std::to_string(att.n_tokens()) +
                                 " positions, but the trace has only " + std::to_string(trace.ids.size()) + " tokens");
    for (int64_t p = 0; p < att.n_tokens(); ++p)
        if (att.ids()[size_t(p)] != trace.ids[size_t(p)])
            throw std::runtime_error(att_path + ": token id " + std::to_string(att.ids()[size_t(p)]) + " at position " +
                                     std::to_string(p) + ", but the trace has " + std::to_string(trace.ids[size_t(p)]) +
                                     " (the files come from different runs)");
}

// ---- head statistics -----------------------------------------------------------
//
// Understood shapes (the first that matches wins):
//   {"heads":[{"layer":L,"head":H,"<metric>":x,...},...], ...}   one record per head
//   {"<metric>":[[x per head] per layer], ...}                     one matrix per metric
// plus an optional similarity matrix under "similarity" (or "js_divergence"),
// either [[...]] over the n_layer*n_head heads or {"values"|"matrix":[[...]],"label"|"measure":...},
// and an optional "definitions" text shown under the table.

namespace {

std::string label_of(const std::string& key) {
    std::string s = key;
    std::replace(s.begin(), s.end(), '_', ' ');
    return s;
}

bool is_matrix(const Json& v) {
    if (!v.is_array() || v.empty()) return false;
    for (const Json& row : v) {
        if (!row.is_array() || row.empty()) return false;
        for (const Json& x : row)
            if (!x.is_number() && !x.is_null()) return false;
    }
    return true;
}

}  // namespace

Json read_viewer_stats(const std::string& path, int64_t n_layer, int64_t n_head) {
    const Json v = json_parse(read_file(path), path);
    if (!v.is_object()) throw std::runtime_error(path + ": expected a JSON object of head statistics");
    Json metrics = Json::array();
    int64_t nl = 0, nh = 0;

    if (const Json* heads = json_find(v, "heads"); heads && heads->is_array()) {
        const std::string where = path + ": heads[]";
        for (const Json& h : *heads) {
            nl = std::max(nl, json_int(json_member(h, "layer", where), where + " layer") + 1);
            nh = std::max(nh, json_int(json_member(h, "head", where), where + " head") + 1);
        }
        std::vector<std::string> keys;
        for (const Json& h : *heads)
            for (const auto& [k, x] : h.items())
                if (x.is_number() && k != "layer" && k != "head" && std::find(keys.begin(), keys.end(), k) == keys.end())
                    keys.push_back(k);
        for (const std::string& k : keys) {
            std::vector<Json> grid(size_t(nl * nh));
            for (const Json& h : *heads) {
                const Json* x = json_find(h, k);
                if (x && x->is_number())
                    grid[size_t(json_int(json_member(h, "layer", where), where) * nh + json_int(json_member(h, "head", where), where))] = *x;
            }
            Json values = Json::array();
            for (int64_t l = 0; l < nl; ++l) {
                Json row = Json::array();
                for (int64_t hh = 0; hh < nh; ++hh) row.push_back(grid[size_t(l * nh + hh)]);
                values.push_back(std::move(row));
            }
            Json m = Json::object();
            m["key"] = k;
            m["label"] = label_of(k);
            m["values"] = std::move(values);
            metrics.push_back(std::move(m));
        }
    } else {
        for (const auto& [k, x] : v.items()) {
            if (k == "similarity" || k == "js_divergence" || !is_matrix(x)) continue;
            const int64_t rows = int64_t(x.size()), cols = int64_t(x[0].size());
            if (nl == 0) nl = rows, nh = cols;
            if (rows != nl || cols != nh) continue;  // not a per-head matrix
            Json m = Json::object();
            m["key"] = k;
            m["label"] = label_of(k);
            m["values"] = x;  // checked by is_matrix: numbers and nulls only
            metrics.push_back(std::move(m));
        }
    }
    if (metrics.empty()) throw std::runtime_error(path + ": no per-head statistics found (expected \"heads\":[{layer,head,...}] or [[...]] matrices)");
    if (n_layer > 0 && (nl != n_layer || nh != n_head))
        throw std::runtime_error(path + ": statistics for " + std::to_string(nl) + " layers x " + std::to_string(nh) +
                                 " heads, but the trace's model has " + std::to_string(n_layer) + " x " + std::to_string(n_head));

    Json out = Json::object();
    out["metrics"] = std::move(metrics);
    for (const char* key : {"similarity", "js_divergence"}) {
        const Json* s = json_find(v, key);
        if (!s) continue;
        const Json* m = s->is_object() ? (json_find(*s, "values") ? json_find(*s, "values") : json_find(*s, "matrix")) : s;
        if (!m || !is_matrix(*m)) continue;
        if (int64_t(m->size()) != nl * nh || int64_t((*m)[0].size()) != nl * nh)
            throw std::runtime_error(path + ": \"" + key + "\" is not a " + std::to_string(nl * nh) + " x " +
                                     std::to_string(nl * nh) + " head x head matrix");
        Json sim = Json::object();
        const Json* lab = s->is_object() ? (json_find(*s, "label") ? json_find(*s, "label") : json_find(*s, "measure")) : nullptr;
        sim["label"] = lab && lab->is_string() ? *lab : Json(label_of(key) + " between heads (L0H0, L0H1, ...)");
        sim["values"] = *m;
        out["similarity"] = std::move(sim);
        break;
    }
    if (const Json* d = json_find(v, "definitions"); d && d->is_string()) out["notes"] = *d;
    return out;
}

}  // namespace minigpt
