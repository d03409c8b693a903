// minigpt convert: one front door for GPT-2 checkpoints -> GGUF (a Hugging Face
// folder, nanoGPT's ckpt.pt, an llm.c .bin, a .safetensors file).
//
// The converter of record is scripts/convert.py: numpy only, every kind of
// checkpoint, pickles through a restricted unpickler that never runs code. The
// common kinds (llm.c, Hugging Face safetensors with vocab.json + merges.txt,
// nanoGPT with GPT-2 BPE) are first tried natively (cli/convert_native.h), which
// writes the same bytes at the speed of copying the file. Whatever the native
// path declines (another kind, another tokenizer, an option only the script has,
// or a problem in the input) goes to the script: this command replaces itself
// with `/usr/bin/python3 convert.py ARGS...` (execv, no shell, the arguments
// passed through unchanged), so the script's exit status, error line and
// progress bar are the command's own. --via native|script picks one path.
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <unistd.h>
#include <vector>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/convert_native.h"
#include "format/checkpoint_kind.h"

namespace minigpt::cli {

namespace {

constexpr const char* kPython = "/usr/bin/python3";  // Debian's, with python3-numpy (the project's rule)

// scripts/convert.py: $MINIGPT_SCRIPTS, else beside the executable as the source tree
// lays it out (build/minigpt, build/asan/minigpt, build/NAME/asan/minigpt: scripts/ one
// to three folders up) or an install does (bin/minigpt, share/minigpt/scripts).
std::string find_convert_script() {
    namespace fs = std::filesystem;
    if (const char* env = std::getenv("MINIGPT_SCRIPTS")) {
        const fs::path p = fs::path(env) / "convert.py";
        if (!fs::is_regular_file(p))
            throw std::runtime_error("MINIGPT_SCRIPTS=" + std::string(env) + ": no convert.py in that folder");
        return p.string();
    }
    std::error_code ec;
    const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
    if (ec) throw std::runtime_error("cannot locate the minigpt executable (/proc/self/exe): " + ec.message());
    const fs::path dir = exe.parent_path();
    std::string tried;
    for (const fs::path& p : {dir / ".." / "scripts", dir / ".." / ".." / "scripts", dir / ".." / ".." / ".." / "scripts",
                              dir / ".." / "share" / "minigpt" / "scripts"}) {
        const fs::path script = (p / "convert.py").lexically_normal();
        if (fs::is_regular_file(script, ec)) return script.string();
        tried += (tried.empty() ? "" : ", ") + script.string();
    }
    throw std::runtime_error("cannot find scripts/convert.py (looked for " + tried +
                             "); set MINIGPT_SCRIPTS to the folder that holds it");
}

}  // namespace

int cmd_convert(int argc, char** argv) {
    Options opts = command_options(
        argv[0],
        "Convert a GPT-2 checkpoint to GGUF: a Hugging Face folder (config.json, model.safetensors or "
        "pytorch_model.bin, tokenizer files), nanoGPT's ckpt.pt (tokenizer: meta.pkl's characters, else GPT-2 BPE), "
        "an llm.c .bin (fp32 or bf16) or a .safetensors file in its Hugging Face folder. Runs "
        "/usr/bin/python3 scripts/convert.py (numpy only; pickles are read without running code) with these "
        "arguments; the output is written to a temporary file and renamed when complete.");
    opts.add_options()("src", "checkpoint", text_value())(
        "out", "output GGUF", text_value())(
        "outtype", "type of the matrices: f32, f16 or q8_0 (norms, biases, position_embd stay f32)",
        text_value("f32"), "TYPE")(
        "name", "general.name (default: the folder's or file's name)", text_value(), "NAME")(
        "meta", "nanoGPT: character vocabulary meta.pkl (default: found as nanoGPT's sample.py finds it)",
        text_value(), "FILE")(
        "tokenizer-dir", "nanoGPT, llm.c: GPT-2 BPE vocab.json + merges.txt (default: GPT-2's, in tests/data)",
        text_value(), "DIR")(
        "source", "Hugging Face: auto, safetensors or bin", text_value("auto"), "S")(
        "tokenizer", "Hugging Face: auto, gpt2 or spm", text_value("auto"), "T")(
        "via", "auto (native where it can, else the script), native (fail rather than run the script) or script",
        text_value("auto"), "HOW")(
        "q,quiet", "no progress on stderr");
    opts.parse_positional({"src", "out"});
    opts.positional_help("SRC OUT.gguf");
    ParsedFlags args;
    if (!parse_flags(opts, argc, argv, args)) return 0;
    const std::string src = required_option(args, "src", "SRC (the checkpoint)");
    const std::string out = required_option(args, "out", "OUT.gguf (the output file)");
    const std::string outtype = args.value("outtype");
    if (outtype != "f32" && outtype != "f16" && outtype != "q8_0")
        usage_error("--outtype: expected f32, f16 or q8_0, got \"" + outtype + "\"");

    const std::string via = args.value("via");
    if (via != "auto" && via != "native" && via != "script")
        usage_error("--via: expected auto, native or script, got \"" + via + "\"");

    const CheckpointKind kind = checkpoint_kind(src);
    if (kind == CheckpointKind::Missing) throw std::runtime_error(src + ": no such file or folder");
    if (kind == CheckpointKind::Gguf)
        throw std::runtime_error(src + ": already a GGUF file (minigpt quantize changes its weight type)");
    std::string script, no_script, why_not;
    try {
        script = find_convert_script();
    } catch (const std::runtime_error& e) {
        if (via == "script") throw;
        no_script = e.what();
    }
    if (via != "script") {
        ConvertRequest req;
        req.src = src, req.out = out, req.outtype = outtype, req.quiet = args.count("quiet") > 0;
        req.tokenizer_dir_given = args.count("tokenizer-dir") > 0;
        if (args.count("name")) req.name = args.value("name");
        // The script's default: the project's copy of GPT-2's vocab.json + merges.txt.
        req.tokenizer_dir = args.count("tokenizer-dir") ? args.value("tokenizer-dir")
                            : script.empty() ? ""
                                             : (std::filesystem::path(script).parent_path().parent_path() / "tests" /
                                                "data" / "tokenizer" / "gpt2").string();
        if (args.count("meta")) why_not = "--meta (a character vocabulary) is read by the script";
        else if (args.value("source") == "bin") why_not = "--source bin is read by the script";
        else if (args.value("tokenizer") == "spm") why_not = "--tokenizer spm is read by the script";
        else if (!script.empty() || args.count("tokenizer-dir") || kind == CheckpointKind::Folder) {
            if (convert_natively(req, why_not)) return 0;
        } else {
            why_not = "no GPT-2 tokenizer files without the source tree (--tokenizer-dir DIR)";
        }
        if (via == "native") throw std::runtime_error(src + ": not converted natively: " + why_not);
    }
    if (script.empty()) throw std::runtime_error(no_script + " (not converted natively: " + why_not + ")");
    if (::access(kPython, X_OK) != 0)
        throw std::runtime_error(std::string("minigpt convert runs ") + kPython + " (with numpy), which is missing: "
                                 "apt-get install python3-numpy");
    if (!args.count("quiet"))
        std::fprintf(stderr, "minigpt convert: %s is %s; running %s %s%s%s\n", src.c_str(), checkpoint_kind_name(kind),
                     kPython, script.c_str(), why_not.empty() ? "" : " (not converted natively: ",
                     why_not.empty() ? "" : (why_not + ")").c_str());

    std::vector<std::string> words{kPython, script};
    for (int i = 1; i < argc; ++i) {  // all but --via, which only this command has
        const std::string a = argv[i];
        if (a == "--via") ++i;
        else if (a.rfind("--via=", 0) != 0) words.push_back(a);
    }
    std::vector<char*> exec_argv;
    for (std::string& w : words) exec_argv.push_back(w.data());
    exec_argv.push_back(nullptr);
    std::fflush(stdout);
    std::fflush(stderr);
    ::execv(kPython, exec_argv.data());
    throw std::runtime_error(std::string("cannot run ") + kPython + ": " + std::strerror(errno));
}

}  // namespace minigpt::cli

namespace {
minigpt::cli::RegisterCommand reg{"convert", minigpt::cli::cmd_convert,
                                  "GPT-2 checkpoint (Hugging Face, nanoGPT, llm.c) -> GGUF", 55};
}
