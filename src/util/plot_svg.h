// Self-contained SVG pictures (no script, no external fonts or files): heat
// maps of per-head values and line charts, laid out as panels in one file.
// Every heat-map cell carries a <title> tooltip with its label and value.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace minigpt {

struct SvgHeatmap {
    std::string title;
    int64_t rows = 0, cols = 0;
    std::vector<double> values;             // rows * cols, row-major; NaN: no value (grey)
    std::vector<std::string> row_labels;    // rows entries (or empty)
    std::vector<std::string> col_labels;    // cols entries (or empty)
    std::vector<std::string> cell_labels;   // rows * cols tooltip names (or empty: "row, col")
    double vmin = 0, vmax = 0;              // colour scale; vmin == vmax: the data's range
    int cell = 18;                          // cell size in px
    bool show_values = false;               // write each value in its cell
    bool reverse = false;                   // dark = high instead of bright = high
    // Signed values: blue (negative) - white (0) - red (positive), the scale
    // symmetric about 0 (±max |value| unless vmin/vmax are given).
    bool diverging = false;
};

// A named line of a chart with several (a legend names each).
struct SvgSeries {
    std::string name;
    std::vector<double> x, y;
};

struct SvgLineChart {
    std::string title, x_label, y_label;
    std::vector<double> x, y;
    std::vector<SvgSeries> series;  // more lines, each in its own colour with a legend entry
    bool log_x = false;
    double reference_y = 0;       // a dashed horizontal line (e.g. the baseline); NaN or 0 with no label: none
    std::string reference_label;
    bool log_y = false;
    int width = 520, height = 320;
};

// One panel rendered: its size and SVG body drawn at the origin.
struct SvgPanel {
    double width = 0, height = 0;
    std::string body;
};

SvgPanel render_heatmap(const SvgHeatmap& h);
SvgPanel render_line_chart(const SvgLineChart& c);

// Panels placed left to right, wrapping at max_width; returns the whole document.
std::string svg_document(const std::vector<SvgPanel>& panels, const std::string& title, double max_width = 1400);

// Viridis-like colour for t in [0, 1], "#rrggbb".
std::string colormap(double t);
// Blue - white - red for t in [0, 1] (0.5 = white), "#rrggbb".
std::string colormap_diverging(double t);
// &, <, >, " escaped for SVG text and attributes.
std::string xml_escape(const std::string& s);

}  // namespace minigpt
