#include "util/progress.h"

#include <algorithm>
#include <sys/ioctl.h>
#include <unistd.h>

namespace minigpt {

namespace {

int terminal_width(FILE* f) {
    winsize ws{};
    if (ioctl(fileno(f), TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 20) return ws.ws_col;
    return 80;
}

std::string format_seconds(double s) {
    char buf[32];
    if (s < 60) std::snprintf(buf, sizeof buf, "%.0fs", s);
    else if (s < 3600) std::snprintf(buf, sizeof buf, "%dm%02ds", int(s) / 60, int(s) % 60);
    else std::snprintf(buf, sizeof buf, "%dh%02dm", int(s) / 3600, int(s) % 3600 / 60);
    return buf;
}

}  // namespace

bool is_terminal(FILE* f) { return f && isatty(fileno(f)) == 1; }

ProgressBar::ProgressBar(std::string label, int64_t total, FILE* out)
    : ProgressBar(std::move(label), total, out, is_terminal(out)) {}

ProgressBar::ProgressBar(std::string label, int64_t total, FILE* out, bool draw)
    : label_(std::move(label)), total_(std::max<int64_t>(1, total)), out_(out), draw_(draw),
      start_(std::chrono::steady_clock::now()), last_draw_(start_) {
    redraw(true);
}

ProgressBar::~ProgressBar() {
    if (!finished_) erase();
}

double ProgressBar::elapsed_seconds() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

std::string ProgressBar::render(const std::string& label, int64_t done, int64_t total, double elapsed_s,
                                const std::string& note, int width) {
    done = std::clamp<int64_t>(done, 0, total);
    const double frac = total > 0 ? double(done) / double(total) : 1.0;
    char counter[96];
    std::string eta;
    if (done > 0 && done < total) eta = "  ETA " + format_seconds(elapsed_s / double(done) * double(total - done));
    std::snprintf(counter, sizeof counter, " %lld/%lld %3d%%%s", (long long)done, (long long)total,
                  int(frac * 100.0), eta.c_str());
    std::string tail = counter;
    if (!note.empty()) tail += "  " + note;
    // The bar takes what is left of the line, between 10 and 40 columns.
    const int bar_width = std::clamp(width - 1 - int(label.size()) - 3 - int(tail.size()), 10, 40);
    const int filled = int(frac * bar_width);
    std::string bar(size_t(bar_width), ' ');
    for (int i = 0; i < filled; ++i) bar[size_t(i)] = '=';
    if (filled < bar_width && done > 0) bar[size_t(filled)] = '>';
    std::string line = label + " [" + bar + "]" + tail;
    if (int(line.size()) > width - 1) line.resize(size_t(std::max(0, width - 1)));
    return line;
}

void ProgressBar::redraw(bool force) {
    if (!draw_ || finished_) return;
    const auto now = std::chrono::steady_clock::now();
    if (!force && now - last_draw_ < std::chrono::milliseconds(100)) return;
    last_draw_ = now;
    const std::string line = render(label_, done_, total_, elapsed_seconds(), note_, terminal_width(out_));
    std::fprintf(out_, "\r\033[K%s", line.c_str());
    std::fflush(out_);
    shown_ = true;
}

void ProgressBar::erase() {
    if (!shown_) return;
    std::fprintf(out_, "\r\033[K");
    std::fflush(out_);
    shown_ = false;
}

void ProgressBar::update(int64_t done, const std::string& note) {
    done_ = done;
    note_ = note;
    redraw(done >= total_);
}

void ProgressBar::print_line(FILE* to, const std::string& line) {
    // Only a bar on the same terminal as `to` can tear the line.
    erase();
    std::fprintf(to, "%s\n", line.c_str());
    std::fflush(to);
    redraw(true);
}

void ProgressBar::finish(const std::string& summary) {
    if (finished_) return;
    erase();
    finished_ = true;
    std::fprintf(out_, "%s: %s%s(%lld/%lld in %.2f s)\n", label_.c_str(), summary.c_str(), summary.empty() ? "" : " ",
                 (long long)done_, (long long)total_, elapsed_seconds());
    std::fflush(out_);
}

}  // namespace minigpt
