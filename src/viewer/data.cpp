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

const JsonValue& member(const JsonValue& obj, const char* key, const std::string& where) {
    const JsonValue* v = obj.find(key);
    if (!v) throw std::runtime_error(where + ": missing \"" + key + "\"");
    return *v;
}

// [{"id","text","p"},...] -> [[id,text,p],...]
JsonValue compact_candidates(const JsonValue& list, const std::string& where) {
    JsonValue out = JsonValue::array();
    for (const JsonValue& c : list.as_array(where)) {
        JsonValue item = JsonValue::array();
        item.push(JsonValue::number(double(member(c, "id", where).as_int(where + " id"))));
        item.push(JsonValue::string(member(c, "text", where).as_string(where + " text")));
        const JsonValue& p = member(c, "p", where);
        item.push(p.is_null() ? JsonValue{} : JsonValue::number(p.as_number(where + " p")));
        out.push(std::move(item));
    }
    return out;
}

JsonValue number_or_null(const JsonValue& v, const std::string& what) {
    return v.is_null() ? JsonValue{} : JsonValue::number(v.as_number(what));
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
        const JsonValue v = parse_json(line, where);
        if (!v.is_object()) throw std::runtime_error(where + ": expected a JSON object per line");
        const std::string& type = member(v, "type", where).as_string(where + " type");
        if (type == "prompt") {
            if (have_prompt) throw std::runtime_error(where + ": a second \"prompt\" line (one trace per file)");
            have_prompt = true;
            if (const JsonValue* m = v.find("model"); m && m->is_string()) tr.model = m->as_string(where);
            tr.n_layer = member(v, "n_layer", where).as_int(where + " n_layer");
            tr.n_head = member(v, "n_head", where).as_int(where + " n_head");
            if (const JsonValue* a = v.find("attention"); a && !a->is_null()) tr.attention_path = a->as_string(where + " attention");
            for (const JsonValue& t : member(v, "tokens", where).as_array(where + " tokens")) {
                const int64_t pos = member(t, "pos", where).as_int(where + " pos");
                if (pos != int64_t(tr.ids.size()))
                    throw std::runtime_error(where + ": prompt token at pos " + std::to_string(pos) + ", expected " +
                                             std::to_string(tr.ids.size()));
                tr.ids.push_back(int32_t(member(t, "id", where).as_int(where + " id")));
                tr.texts.push(JsonValue::string(member(t, "text", where).as_string(where + " text")));
                if (const JsonValue* h = t.find("hex"); h && h->is_string()) tr.hex.set(std::to_string(pos), *h);
                tr.steps.push(JsonValue{});
            }
            tr.n_prompt = int64_t(tr.ids.size());
        } else if (type == "step") {
            if (!have_prompt) throw std::runtime_error(where + ": a \"step\" line before the \"prompt\" line");
            const int64_t pos = member(v, "pos", where).as_int(where + " pos");
            if (pos != int64_t(tr.ids.size()))
                throw std::runtime_error(where + ": step at pos " + std::to_string(pos) + ", expected " +
                                         std::to_string(tr.ids.size()) + " (steps follow the prompt, one per position)");
            tr.ids.push_back(int32_t(member(v, "id", where).as_int(where + " id")));
            tr.texts.push(JsonValue::string(member(v, "text", where).as_string(where + " text")));
            if (const JsonValue* h = v.find("hex"); h && h->is_string()) tr.hex.set(std::to_string(pos), *h);
            JsonValue s = JsonValue::object();
            s.set("id", JsonValue::number(tr.ids.back()));
            s.set("logprob", number_or_null(member(v, "logprob", where), where + " logprob"));
            s.set("entropy", number_or_null(member(v, "entropy", where), where + " entropy"));
            s.set("top", compact_candidates(member(v, "top", where), where + " top"));
            if (const JsonValue* lens = v.find("lens")) {
                JsonValue layers = JsonValue::array();
                for (const JsonValue& l : lens->as_array(where + " lens")) {
                    const int64_t layer = member(l, "layer", where).as_int(where + " lens layer");
                    if (layer != int64_t(layers.size()))
                        throw std::runtime_error(where + ": lens layer " + std::to_string(layer) + ", expected " +
                                                 std::to_string(layers.size()));
                    layers.push(compact_candidates(member(l, "top", where), where + " lens top"));
                }
                s.set("lens", std::move(layers));
            }
            tr.steps.push(std::move(s));
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

bool is_matrix(const JsonValue& v) {
    if (!v.is_array() || v.size() == 0) return false;
    for (const JsonValue& row : v.as_array("")) {
        if (!row.is_array() || row.size() == 0) return false;
        for (const JsonValue& x : row.as_array(""))
            if (!x.is_number() && !x.is_null()) return false;
    }
    return true;
}

JsonValue matrix_copy(const JsonValue& m) {
    JsonValue out = JsonValue::array();
    for (const JsonValue& row : m.as_array("")) {
        JsonValue r = JsonValue::array();
        for (const JsonValue& x : row.as_array("")) r.push(x.is_null() ? JsonValue{} : JsonValue::number(x.as_number("")));
        out.push(std::move(r));
    }
    return out;
}

}  // namespace

JsonValue read_viewer_stats(const std::string& path, int64_t n_layer, int64_t n_head) {
    const JsonValue v = parse_json(read_file(path), path);
    if (!v.is_object()) throw std::runtime_error(path + ": expected a JSON object of head statistics");
    JsonValue metrics = JsonValue::array();
    int64_t nl = 0, nh = 0;

    if (const JsonValue* heads = v.find("heads"); heads && heads->is_array()) {
        for (const JsonValue& h : heads->as_array("")) {
            const std::string where = path + ": heads[]";
            nl = std::max(nl, member(h, "layer", where).as_int(where + " layer") + 1);
            nh = std::max(nh, member(h, "head", where).as_int(where + " head") + 1);
        }
        std::vector<std::string> keys;
        for (const JsonValue& h : heads->as_array(""))
            for (const auto& [k, x] : h.members())
                if (x.is_number() && k != "layer" && k != "head" && std::find(keys.begin(), keys.end(), k) == keys.end())
                    keys.push_back(k);
        for (const std::string& k : keys) {
            std::vector<JsonValue> grid(size_t(nl * nh));
            for (const JsonValue& h : heads->as_array("")) {
                const JsonValue* x = h.find(k);
                if (x && x->is_number())
                    grid[size_t(h.find("layer")->as_int("") * nh + h.find("head")->as_int(""))] = JsonValue::number(x->as_number(""));
            }
            JsonValue values = JsonValue::array();
            for (int64_t l = 0; l < nl; ++l) {
                JsonValue row = JsonValue::array();
                for (int64_t hh = 0; hh < nh; ++hh) row.push(grid[size_t(l * nh + hh)]);
                values.push(std::move(row));
            }
            JsonValue m = JsonValue::object();
            m.set("key", JsonValue::string(k));
            m.set("label", JsonValue::string(label_of(k)));
            m.set("values", std::move(values));
            metrics.push(std::move(m));
        }
    } else {
        for (const auto& [k, x] : v.members()) {
            if (k == "similarity" || k == "js_divergence" || !is_matrix(x)) continue;
            const int64_t rows = int64_t(x.size()), cols = int64_t(x.as_array("")[0].size());
            if (nl == 0) nl = rows, nh = cols;
            if (rows != nl || cols != nh) continue;  // not a per-head matrix
            JsonValue m = JsonValue::object();
            m.set("key", JsonValue::string(k));
            m.set("label", JsonValue::string(label_of(k)));
            m.set("values", matrix_copy(x));
            metrics.push(std::move(m));
        }
    }
    if (metrics.size() == 0) throw std::runtime_error(path + ": no per-head statistics found (expected \"heads\":[{layer,head,...}] or [[...]] matrices)");
    if (n_layer > 0 && (nl != n_layer || nh != n_head))
        throw std::runtime_error(path + ": statistics for " + std::to_string(nl) + " layers x " + std::to_string(nh) +
                                 " heads, but the trace's model has " + std::to_string(n_layer) + " x " + std::to_string(n_head));

    JsonValue out = JsonValue::object();
    out.set("metrics", std::move(metrics));
    for (const char* key : {"similarity", "js_divergence"}) {
        const JsonValue* s = v.find(key);
        if (!s) continue;
        const JsonValue* m = s->is_object() ? (s->find("values") ? s->find("values") : s->find("matrix")) : s;
        if (!m || !is_matrix(*m)) continue;
        if (int64_t(m->size()) != nl * nh || int64_t(m->as_array("")[0].size()) != nl * nh)
            throw std::runtime_error(path + ": \"" + key + "\" is not a " + std::to_string(nl * nh) + " x " +
                                     std::to_string(nl * nh) + " head x head matrix");
        JsonValue sim = JsonValue::object();
        const JsonValue* lab = s->is_object() ? (s->find("label") ? s->find("label") : s->find("measure")) : nullptr;
        sim.set("label", JsonValue::string(lab && lab->is_string() ? lab->as_string("") : label_of(key) + " between heads (L0H0, L0H1, ...)"));
        sim.set("values", matrix_copy(*m));
        out.set("similarity", std::move(sim));
        break;
    }
    if (const JsonValue* d = v.find("definitions"); d && d->is_string()) out.set("notes", *d);
    return out;
}

}  // namespace minigpt
