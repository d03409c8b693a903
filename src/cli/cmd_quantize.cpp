// minigpt quantize: rewrites a GGUF model with f32, f16 or q8_0 weights, as
// llama-quantize does (same tensor choices, same q8_0 blocks, same file_type
// numbers), so the output loads in llama.cpp and in minigpt alike.
#include <algorithm>
#include <cstdio>
#include <memory>

#include "cli/args.h"
#include "cli/commands.h"
#include "util/progress.h"
#include "format/quantize.h"

namespace minigpt::cli {

namespace {

std::string shape4(const std::vector<int64_t>& ne) {
    char buf[80];
    int64_t d[4] = {1, 1, 1, 1};
    for (size_t i = 0; i < ne.size() && i < 4; ++i) d[i] = ne[i];
    std::snprintf(buf, sizeof buf, "[%6lld, %6lld, %6lld, %6lld]", (long long)d[0], (long long)d[1], (long long)d[2],
                  (long long)d[3]);
    return buf;
}

double mib(uint64_t bytes) { return double(bytes) / (1024.0 * 1024.0); }

}  // namespace

int cmd_quantize(int argc, char** argv) {
    Options opts = command_options(
        argv[0], "Convert a GGUF model's weights to f32, f16 or q8_0 (ggml's q8_0 blocks: 32 weights, one f16 "
                 "scale, 32 int8).\nAs llama-quantize: only matrices are converted; norms, biases and "
                 "position_embd keep their type; general.file_type becomes 0 (f32), 1 (f16) or 7 (q8_0). "
                 "A matrix whose rows are not a multiple of 32 gets f16 in a q8_0 file.\n"
                 "The output is written to a temporary file and renamed when complete.");
    add_threads_option(opts);
    opts.add_options()("input", "input GGUF", text_value(), "IN")(
        "output", "output GGUF", text_value(), "OUT")(
        "type", "f32, f16 or q8_0", text_value(), "TYPE");
    opts.parse_positional({"input", "output", "type"});
    opts.positional_help("IN.gguf OUT.gguf {f32,f16,q8_0}");
    ParsedFlags args;
    if (!parse_flags(opts, argc, argv, args)) return 0;
    const std::string in = required_option(args, "input", "IN.gguf"), out = required_option(args, "output", "OUT.gguf");
    const std::string type = required_option(args, "type", "the type (f32, f16 or q8_0)");
    if (in == out) usage_error("OUT.gguf must differ from the input (" + in + ")");
    QuantizeOptions qo;
    qo.target = usage_errors("type", [&] { return parse_quant_type(type); });
    qo.n_threads = threads_option(args);

    std::printf("quantizing %s -> %s as %s (general.file_type %u)\n", in.c_str(), out.c_str(), dtype_name(qo.target),
                llama_ftype_of(qo.target));
    std::unique_ptr<ProgressBar> bar;
    qo.on_tensor = [&](size_t i, size_t n, const QuantizeTensorInfo& t) {
        if (!bar) bar = std::make_unique<ProgressBar>("quantize", int64_t(n));
        char line[256];
        const std::string what = t.from == t.to ? std::string("kept") : std::string("converted to ") + dtype_name(t.to);
        std::snprintf(line, sizeof line, "[%3zu/%3zu] %36s - %s, type = %5s, %-16s size = %8.3f MiB -> %8.3f MiB%s",
                      i + 1, n, t.name.c_str(), shape4(t.ne).c_str(), dtype_name(t.from), what.c_str(),
                      mib(t.bytes_in), mib(t.bytes_out),
                      t.fell_back ? "  (row length not a multiple of 32: f16 instead of q8_0)" : "");
        bar->print_line(stdout, line);
        bar->update(int64_t(i + 1), t.name);
    };
    const QuantizeSummary s = quantize_file(in, out, qo);
    char sizes[96];
    std::snprintf(sizes, sizeof sizes, "model size = %8.2f MiB\nquant size = %8.2f MiB", mib(s.bytes_in), mib(s.bytes_out));
    if (bar) {
        bar->print_line(stdout, sizes);  // erases the bar first
        bar->finish("wrote " + out);
    } else {
        std::printf("%s\n", sizes);
    }
    return 0;
}

}  // namespace minigpt::cli

namespace {
minigpt::cli::RegisterCommand reg{"quantize", minigpt::cli::cmd_quantize,
                                  "convert a GGUF's weights to f32, f16 or q8_0 (llama-quantize's rules)", 50};
}
