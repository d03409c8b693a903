// minigpt view: a generation trace (and its attention export and head
// statistics) as one self-contained HTML page.
#include <chrono>
#include <cstdio>
#include <sys/stat.h>

#include "analysis/attention_export.h"
#include "cli/args.h"
#include "cli/commands.h"
#include "util/output_file.h"
#include "viewer/data.h"
#include "viewer/html.h"

namespace minigpt::cli {

namespace {

bool file_exists(const std::string& path) {
    struct stat st;
    return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

// The attention export a trace names is resolved as given, then next to the trace.
std::string find_named_attention(const std::string& named, const std::string& trace_path) {
    if (file_exists(named)) return named;
    const size_t slash = trace_path.find_last_of('/');
    if (named.empty() || named[0] == '/' || slash == std::string::npos) return "";
    const std::string beside = trace_path.substr(0, slash + 1) + named;
    return file_exists(beside) ? beside : "";
}

std::string default_output(const std::string& trace) {
    const size_t dot = trace.find_last_of('.'), slash = trace.find_last_of('/');
    const bool has_ext = dot != std::string::npos && (slash == std::string::npos || dot > slash);
    return (has_ext ? trace.substr(0, dot) : trace) + ".html";
}

}  // namespace

int cmd_view(int argc, char** argv) {
    Options opts = command_options(
        argv[0], "Write a trace (generate --trace) as one self-contained HTML page: the text as tokens, for a "
                 "picked token where every layer x head attends (grid of heat maps, lines for one head), each "
                 "step's candidates, head statistics. The page fetches nothing; open it from disk.\n"
                 "Attention weights are stored in the page as one byte each, q = round(255*sqrt(w)) (error "
                 "at most sqrt(w)/255 + 1/260100 <= 0.004), and decoded a row at a time.");
    opts.add_options()("trace", "trace file (JSONL) from minigpt generate --trace", text_value(), "FILE")(
        "a,attention", "attention export (generate --attention); default: the one the trace names, if found",
        text_value(), "FILE")("no-attention", "leave attention out even if the trace names a file")(
        "stats", "head statistics JSON (minigpt heads stats --json)", text_value(), "FILE")(
        "o,output", "HTML file to write (default: the trace's name with .html)", text_value(), "FILE")(
        "title", "page title (default: the trace's file name)", text_value(), "TEXT")(
        "thumb", "side of each head's whole-pattern thumbnail, in blocks", number_value("64"), "N");
    opts.parse_positional({"trace"});
    opts.positional_help("TRACE.jsonl");
    ParsedFlags args;
    if (!parse_flags(opts, argc, argv, args)) return 0;
    const std::string trace_path = required_option(args, "trace", "TRACE.jsonl");
    const int thumb = int(int_option(args, "thumb", between(1, 512)));
    const auto t0 = std::chrono::steady_clock::now();

    const ViewerTrace trace = read_viewer_trace(trace_path);

    std::string att_path;
    if (args.count("attention")) {
        att_path = args.value("attention");
    } else if (!args.count("no-attention") && !trace.attention_path.empty()) {
        att_path = find_named_attention(trace.attention_path, trace_path);
        if (att_path.empty())
            std::fprintf(stderr, "minigpt view: the trace names attention file %s, which was not found; the page has no attention\n",
                         trace.attention_path.c_str());
    }
    AttentionFile attention;
    if (!att_path.empty()) {
        attention = AttentionFile::read(att_path);
        check_attention_matches_trace(attention, trace, att_path);
    }

    ViewerPageInput in;
    in.trace = &trace;
    in.attention = att_path.empty() ? nullptr : &attention;
    if (args.count("stats")) in.stats = read_viewer_stats(args.value("stats"), trace.n_layer, trace.n_head);
    in.thumb_size = thumb;
    const size_t slash = trace_path.find_last_of('/');
    in.title = args.count("title") ? args.value("title")
                                   : (slash == std::string::npos ? trace_path : trace_path.substr(slash + 1));

    const std::string out_path = args.count("output") ? args.value("output") : default_output(trace_path);
    OutputFile out(out_path);
    write_viewer_page(out, in);
    const uint64_t bytes = out.position();
    out.commit();
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::fprintf(stderr, "minigpt view: wrote %s (%.1f MiB; %zu tokens, %lld with attention rows) in %.2f s\n",
                 out_path.c_str(), double(bytes) / (1 << 20), trace.ids.size(),
                 (long long)(in.attention ? attention.n_tokens() : 0), secs);
    return 0;
}

}  // namespace minigpt::cli

namespace {
minigpt::cli::RegisterCommand reg{"view", minigpt::cli::cmd_view,
                                  "write a trace and its attention as one self-contained HTML page", 40};
}
