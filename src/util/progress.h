// A one-line progress bar for long commands (perplexity, quantize, ...).
//
// The bar is drawn on stderr only when stderr is a terminal, redrawn at most
// every 100 ms, so piping or redirecting a command never fills a log with
// carriage returns. finish() always prints one final line ("LABEL: summary
// (N/N in 1.2 s)"), terminal or not, so a log still says what was done.
//
//   ProgressBar bar("quantize", n_tensors);
//   for (...) { bar.print_line(stdout, "[ 1/29] token_embd.weight ..."); bar.update(i + 1, name); }
//   bar.finish("wrote out.gguf");
#pragma once
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

namespace minigpt {

class ProgressBar {
public:
    // total > 0 units of work. `out` is where the bar and the final line go;
    // `draw` overrides the terminal check (tests pass false or true).
    ProgressBar(std::string label, int64_t total, FILE* out = stderr);
    ProgressBar(std::string label, int64_t total, FILE* out, bool draw);
    ~ProgressBar();  // erases an unfinished bar (e.g. when an exception unwinds), prints nothing else
    ProgressBar(const ProgressBar&) = delete;
    ProgressBar& operator=(const ProgressBar&) = delete;

    // done units of `total` so far; `note` is shown after the counter (e.g. "PPL 23.4").
    void update(int64_t done, const std::string& note = {});
    // Prints a full line to `to` without tearing the bar: erases it, prints, redraws.
    void print_line(FILE* to, const std::string& line);
    // Erases the bar and prints the final line; later calls do nothing.
    void finish(const std::string& summary = {});

    bool drawing() const { return draw_; }
    double elapsed_seconds() const;

    // The text of the bar for a terminal `width` columns wide (no control codes).
    static std::string render(const std::string& label, int64_t done, int64_t total, double elapsed_s,
                              const std::string& note, int width);

private:
    void redraw(bool force);
    void erase();

    std::string label_;
    int64_t total_, done_ = 0;
    std::string note_;
    FILE* out_;
    bool draw_;
    bool shown_ = false, finished_ = false;
    std::chrono::steady_clock::time_point start_, last_draw_;
};

// True when the stream is attached to a terminal.
bool is_terminal(FILE* f);

}  // namespace minigpt
