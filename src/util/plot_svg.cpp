#include "util/plot_svg.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

namespace minigpt {

namespace {

std::string fmt(const char* f, double v) {
    char buf[64];
    std::snprintf(buf, sizeof buf, f, v);
    return buf;
}

// A short, readable number for labels and tooltips.
std::string num(double v) {
    if (std::isnan(v)) return "n/a";
    const double a = std::fabs(v);
    if (a != 0 && (a < 1e-3 || a >= 1e6)) return fmt("%.3g", v);
    if (a >= 100) return fmt("%.1f", v);
    return fmt("%.4g", v);
}

// At most five characters, for values written inside cells.
std::string short_num(double v) {
    const double a = std::fabs(v);
    if (a < 10) return fmt("%.2f", v);
    if (a < 100) return fmt("%.1f", v);
    if (a < 1e5) return fmt("%.0f", v);
    return fmt("%.0e", v);
}

std::string text(double x, double y, const std::string& s, const char* extra = "") {
    return "<text x=\"" + fmt("%.1f", x) + "\" y=\"" + fmt("%.1f", y) + "\" " + extra + ">" + xml_escape(s) + "</text>\n";
}

// "#rrggbb" at t in [0, 1] (clamped; NaN -> 0) on N equally spaced RGB stops, linearly interpolated.
template <size_t N>
std::string interpolate_stops(const int (&stops)[N][3], double t) {
    if (!(t >= 0)) t = 0;
    if (t > 1) t = 1;
    const double x = t * (N - 1);
    const int i = std::min(int(N) - 2, int(x));
    const double f = x - i;
    char buf[8];
    std::snprintf(buf, sizeof buf, "#%02x%02x%02x", int(std::lround(stops[i][0] + f * (stops[i + 1][0] - stops[i][0]))),
                  int(std::lround(stops[i][1] + f * (stops[i + 1][1] - stops[i][1]))),
                  int(std::lround(stops[i][2] + f * (stops[i + 1][2] - stops[i][2]))));
    return buf;
}

}  // namespace

std::string xml_escape(const std::string& s) {
    std::string o;
    for (char c : s) {
        switch (c) {
            case '&': o += "&amp;"; break;
            case '<': o += "&lt;"; break;
            case '>': o += "&gt;"; break;
            case '"': o += "&quot;"; break;
            default: o += c;
        }
    }
    return o;
}

std::string colormap(double t) {
    // Viridis sampled at nine stops, linearly interpolated.
    static const int stops[9][3] = {{68, 1, 84},    {71, 44, 122},  {59, 81, 139},   {44, 113, 142}, {33, 144, 141},
                                    {39, 173, 129}, {92, 200, 99},  {170, 220, 50},  {253, 231, 37}};
    return interpolate_stops(stops, t);
}

std::string colormap_diverging(double t) {
    // ColorBrewer RdBu (reversed: blue low, red high) at seven stops.
    static const int stops[7][3] = {{33, 102, 172},  {103, 169, 207}, {209, 229, 240}, {247, 247, 247},
                                    {253, 219, 199}, {239, 138, 98},  {178, 24, 43}};
    return interpolate_stops(stops, t);
}

SvgPanel render_heatmap(const SvgHeatmap& h) {
    double lo = h.vmin, hi = h.vmax;
    if (lo == hi && h.diverging) {
        double m = 0;
        for (double v : h.values)
            if (!std::isnan(v)) m = std::max(m, std::fabs(v));
        lo = -(m > 0 ? m : 1), hi = -lo;
    }
    const auto colour_of = [&](double t) { return h.diverging ? colormap_diverging(t) : colormap(t); };
    if (lo == hi) {
        lo = std::numeric_limits<double>::infinity();
        hi = -lo;
        for (double v : h.values)
            if (!std::isnan(v)) lo = std::min(lo, v), hi = std::max(hi, v);
        if (!(lo <= hi)) lo = 0, hi = 1;
        if (lo == hi) hi = lo + 1;
    }
    // Labels: about 5.5 px per character at font size 9. Column labels that do
    // not fit across a cell are written vertically; with cells too small even
    // for that, only every 8th row and column is labelled.
    size_t longest_col = 0, longest_row = 0;
    for (const auto& s : h.col_labels) longest_col = std::max(longest_col, s.size());
    for (const auto& s : h.row_labels) longest_row = std::max(longest_row, s.size());
    const double c = h.cell;
    const bool vertical = double(longest_col) * 5.5 > c;
    const bool every_col = c >= 11, every_row = c >= 11;
    const double col_band = h.col_labels.empty() ? 0 : (vertical ? double(longest_col) * 5.5 + 6 : 16);
    const double left = h.row_labels.empty() ? 10 : double(longest_row) * 5.5 + 10, top = 28 + col_band;
    const double grid_w = c * double(h.cols), grid_h = c * double(h.rows);
    SvgPanel p;
    p.width = std::max(left + grid_w + 70, double(h.title.size()) * 7.5 + left);
    p.height = top + grid_h + 12;
    std::string& b = p.body;
    b += text(left, 16, h.title, "font-size=\"13\" font-weight=\"bold\"");
    for (int64_t j = 0; j < h.cols && !h.col_labels.empty(); ++j) {
        if (!every_col && j % 8 != 0) continue;
        const double x = left + (double(j) + 0.5) * c;
        if (vertical)
            b += "<text x=\"" + fmt("%.1f", x + 3) + "\" y=\"" + fmt("%.1f", top - 4) + "\" font-size=\"9\" transform=\"rotate(-90 " +
                 fmt("%.1f", x + 3) + " " + fmt("%.1f", top - 4) + ")\">" + xml_escape(h.col_labels[size_t(j)]) + "</text>\n";
        else
            b += text(x, top - 5, h.col_labels[size_t(j)], "font-size=\"9\" text-anchor=\"middle\"");
    }
    for (int64_t i = 0; i < h.rows && !h.row_labels.empty(); ++i)
        if (every_row || i % 8 == 0)
            b += text(left - 4, top + (double(i) + 0.5) * c + 3, h.row_labels[size_t(i)], "font-size=\"9\" text-anchor=\"end\"");
    for (int64_t i = 0; i < h.rows; ++i)
        for (int64_t j = 0; j < h.cols; ++j) {
            const double v = h.values[size_t(i * h.cols + j)];
            double t = (v - lo) / (hi - lo);
            if (h.reverse) t = 1 - t;
            const std::string colour = std::isnan(v) ? "#cccccc" : colour_of(t);
            const std::string name = h.cell_labels.empty()
                                         ? (h.row_labels.empty() ? std::to_string(i) : h.row_labels[size_t(i)]) + ", " +
                                               (h.col_labels.empty() ? std::to_string(j) : h.col_labels[size_t(j)])
                                         : h.cell_labels[size_t(i * h.cols + j)];
            b += "<rect x=\"" + fmt("%.1f", left + double(j) * c) + "\" y=\"" + fmt("%.1f", top + double(i) * c) +
                 "\" width=\"" + fmt("%.1f", c) + "\" height=\"" + fmt("%.1f", c) + "\" fill=\"" + colour + "\"><title>" +
                 xml_escape(name + ": " + num(v)) + "</title></rect>\n";
            if (h.show_values && !std::isnan(v))
                b += text(left + (double(j) + 0.5) * c, top + (double(i) + 0.5) * c + 3, short_num(v),
                          (h.diverging ? std::fabs(t - 0.5) < 0.3 : t > 0.6) ? "font-size=\"8\" text-anchor=\"middle\" fill=\"#000\""
                                  : "font-size=\"8\" text-anchor=\"middle\" fill=\"#fff\"");
        }
    // Colour bar.
    const double bx = left + grid_w + 10, bh = std::max(40.0, grid_h);
    static int gradients = 0;  // ids must be unique within the document
    const std::string gid = "cbar" + std::to_string(++gradients);
    b += "<defs><linearGradient id=\"" + gid + "\" x1=\"0\" y1=\"1\" x2=\"0\" y2=\"0\">";
    for (int k = 0; k <= 8; ++k)
        b += "<stop offset=\"" + fmt("%.3f", k / 8.0) + "\" stop-color=\"" + colour_of(h.reverse ? 1 - k / 8.0 : k / 8.0) + "\"/>";
    b += "</linearGradient></defs>\n";
    b += "<rect x=\"" + fmt("%.1f", bx) + "\" y=\"" + fmt("%.1f", top) + "\" width=\"10\" height=\"" + fmt("%.1f", bh) +
         "\" fill=\"url(#" + gid + ")\"/>\n";
    b += text(bx + 13, top + 8, num(hi), "font-size=\"9\"");
    b += text(bx + 13, top + bh, num(lo), "font-size=\"9\"");
    if (h.diverging) b += text(bx + 13, top + bh / 2 + 3, num((lo + hi) / 2), "font-size=\"9\"");
    p.height = std::max(p.height, top + bh + 12);
    return p;
}

SvgPanel render_line_chart(const SvgLineChart& ch) {
    SvgPanel p;
    p.width = ch.width;
    p.height = ch.height;
    const double left = 64, right = 16, top = 30, bottom = 44;
    const double W = ch.width - left - right, H = ch.height - top - bottom;
    auto ty = [&](double v) { return ch.log_y ? std::log10(std::max(v, 1e-300)) : v; };
    auto tx = [&](double v) { return ch.log_x ? std::log10(std::max(v, 1e-300)) : v; };
    // The unnamed line (x, y) first, then the named series.
    std::vector<SvgSeries> lines;
    if (!ch.x.empty()) lines.push_back(SvgSeries{"", ch.x, ch.y});
    lines.insert(lines.end(), ch.series.begin(), ch.series.end());
    double x0 = std::numeric_limits<double>::infinity(), x1 = -x0, y0 = x0, y1 = -x0;
    for (const SvgSeries& s : lines)
        for (size_t i = 0; i < s.x.size(); ++i) {
            if (!std::isfinite(s.y[i])) continue;
            x0 = std::min(x0, tx(s.x[i])), x1 = std::max(x1, tx(s.x[i]));
            y0 = std::min(y0, ty(s.y[i])), y1 = std::max(y1, ty(s.y[i]));
        }
    const bool has_ref = !ch.reference_label.empty() && std::isfinite(ch.reference_y);
    if (has_ref) y0 = std::min(y0, ty(ch.reference_y)), y1 = std::max(y1, ty(ch.reference_y));
    if (!(x0 < x1)) x0 -= 1, x1 += 1;
    if (!(y0 < y1)) y0 -= 1, y1 += 1;
    const double pad = (y1 - y0) * 0.05;
    y0 -= pad, y1 += pad;
    auto px = [&](double x) { return left + (tx(x) - x0) / (x1 - x0) * W; };
    auto py = [&](double y) { return top + H - (ty(y) - y0) / (y1 - y0) * H; };
    std::string& b = p.body;
    b += text(left, 18, ch.title, "font-size=\"13\" font-weight=\"bold\"");
    b += "<rect x=\"" + fmt("%.1f", left) + "\" y=\"" + fmt("%.1f", top) + "\" width=\"" + fmt("%.1f", W) + "\" height=\"" +
         fmt("%.1f", H) + "\" fill=\"none\" stroke=\"#888\"/>\n";
    for (int k = 0; k <= 4; ++k) {  // five ticks per axis
        const double xv = x0 + (x1 - x0) * k / 4, yv = y0 + (y1 - y0) * k / 4;
        const double yl = ch.log_y ? std::pow(10.0, yv) : yv, xl = ch.log_x ? std::pow(10.0, xv) : xv;
        b += text(left + (xv - x0) / (x1 - x0) * W, top + H + 14, num(std::round(xl * 100) / 100),
                  "font-size=\"9\" text-anchor=\"middle\"");
        b += text(left - 4, top + H - (yv - y0) / (y1 - y0) * H + 3, num(yl), "font-size=\"9\" text-anchor=\"end\"");
    }
    b += text(left + W / 2, ch.height - 8, ch.x_label + (ch.log_x ? " (log scale)" : ""), "font-size=\"11\" text-anchor=\"middle\"");
    b += "<text x=\"14\" y=\"" + fmt("%.1f", top + H / 2) + "\" font-size=\"11\" text-anchor=\"middle\" transform=\"rotate(-90 14 " +
         fmt("%.1f", top + H / 2) + ")\">" + xml_escape(ch.y_label + (ch.log_y ? " (log scale)" : "")) + "</text>\n";
    if (has_ref) {
        const double y = py(ch.reference_y);
        b += "<line x1=\"" + fmt("%.1f", left) + "\" x2=\"" + fmt("%.1f", left + W) + "\" y1=\"" + fmt("%.1f", y) + "\" y2=\"" +
             fmt("%.1f", y) + "\" stroke=\"#c33\" stroke-dasharray=\"4 3\"/>\n";
        b += text(left + W - 4, y - 4, ch.reference_label + " " + num(ch.reference_y), "font-size=\"9\" text-anchor=\"end\" fill=\"#c33\"");
    }
    static const char* kColours[] = {"#2a6fb0", "#d9822b", "#3a9a4a", "#b03a8a", "#7a5cc4", "#8c6d31"};
    for (size_t k = 0; k < lines.size(); ++k) {
        const SvgSeries& s = lines[k];
        const std::string colour = kColours[k % 6];
        std::string pts;
        for (size_t i = 0; i < s.x.size(); ++i)
            if (std::isfinite(s.y[i])) pts += fmt("%.1f", px(s.x[i])) + "," + fmt("%.1f", py(s.y[i])) + " ";
        b += "<polyline fill=\"none\" stroke=\"" + colour + "\" stroke-width=\"1.5\" points=\"" + pts + "\"/>\n";
        for (size_t i = 0; i < s.x.size(); ++i)
            if (std::isfinite(s.y[i]))
                b += "<circle cx=\"" + fmt("%.1f", px(s.x[i])) + "\" cy=\"" + fmt("%.1f", py(s.y[i])) + "\" r=\"2\" fill=\"" +
                     colour + "\"><title>" + xml_escape((s.name.empty() ? "" : s.name + ", ") + num(s.x[i]) + ": " + num(s.y[i])) +
                     "</title></circle>\n";
        if (!s.name.empty()) {  // legend, top left inside the frame
            const double ly = top + 12 + 13 * double(k);
            b += "<line x1=\"" + fmt("%.1f", left + 8) + "\" x2=\"" + fmt("%.1f", left + 24) + "\" y1=\"" + fmt("%.1f", ly - 3) +
                 "\" y2=\"" + fmt("%.1f", ly - 3) + "\" stroke=\"" + colour + "\" stroke-width=\"2\"/>\n";
            b += text(left + 28, ly, s.name, "font-size=\"9\"");
        }
    }
    return p;
}

std::string svg_document(const std::vector<SvgPanel>& panels, const std::string& title, double max_width) {
    // Row-wise flow layout.
    std::string body;
    double x = 0, y = 30, row_h = 0, width = 0;
    for (const SvgPanel& p : panels) {
        if (x > 0 && x + p.width > max_width) {
            x = 0;
            y += row_h + 10;
            row_h = 0;
        }
        body += "<g transform=\"translate(" + fmt("%.1f", x + 10) + "," + fmt("%.1f", y) + ")\">\n" + p.body + "</g>\n";
        x += p.width + 10;
        width = std::max(width, x + 10);
        row_h = std::max(row_h, p.height);
    }
    const double height = y + row_h + 10;
    std::string s = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" +
                    fmt("%.0f", width) + "\" height=\"" + fmt("%.0f", height) + "\" viewBox=\"0 0 " + fmt("%.0f", width) + " " +
                    fmt("%.0f", height) + "\" font-family=\"sans-serif\">\n<rect width=\"100%\" height=\"100%\" fill=\"#fff\"/>\n";
    s += text(10, 20, title, "font-size=\"15\" font-weight=\"bold\"");
    s += body + "</svg>\n";
    return s;
}

}  // namespace minigpt
