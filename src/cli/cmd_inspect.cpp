// minigpt inspect: a GGUF file's header, metadata and tensor table.
#include <cstdio>

#include "cli/args.h"
#include "cli/commands.h"
#include "format/gguf.h"

namespace minigpt::cli {

int cmd_inspect(int argc, char** argv) {
    Options opts =
        command_options(argv[0], "Print a GGUF file's metadata and tensor table (name, type, shape, size).");
    add_model_option(opts, "GGUF file");
    opts.add_options()("a,all", "print arrays in full length (default: first 8 items)");
    opts.parse_positional({"model"});
    opts.positional_help("FILE.gguf");
    ParsedFlags args;
    if (!parse_flags(opts, argc, argv, args)) return 0;
    GGUFFile f(required_option(args, "model", "the GGUF file"));
    const size_t max_items = args.count("all") ? size_t(-1) : 8;
    std::printf("%s: GGUF v%u, %llu bytes, alignment %llu, data at offset %llu\n", f.path().c_str(), f.version(),
                (unsigned long long)f.file_size(), (unsigned long long)f.alignment(),
                (unsigned long long)f.data_offset());
    std::printf("\nmetadata (%zu keys):\n", f.metadata().size());
    for (const auto& [key, value] : f.metadata())
        std::printf("  %-40s %-7s %s\n", key.c_str(), gguf_type_name(value.type),
                    GGUFFile::to_string(value, max_items).c_str());
    std::printf("\ntensors (%zu):\n  %-32s %-6s %-20s %12s %12s\n", f.tensors().size(), "name", "type", "shape",
                "bytes", "offset");
    uint64_t total = 0;
    for (const GGUFTensor& t : f.tensors()) {
        std::printf("  %-32s %-6s %-20s %12llu %12llu\n", t.name.c_str(), dtype_name(t.type), t.shape_string().c_str(),
                    (unsigned long long)t.nbytes, (unsigned long long)t.file_offset);
        total += t.nbytes;
    }
    std::printf("  total %.2f MiB of tensor data\n", double(total) / (1 << 20));
    return 0;
}

}  // namespace minigpt::cli

namespace {
minigpt::cli::RegisterCommand reg{"inspect", minigpt::cli::cmd_inspect,
                                  "print a GGUF file's metadata and tensor table", 60};
}
