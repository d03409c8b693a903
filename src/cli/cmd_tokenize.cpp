// minigpt tokenize: text -> token ids with a model's tokenizer (from a GGUF
// file, or from vocab.json + merges.txt), like llama.cpp's llama-tokenize.
#include <cerrno>
#include <charconv>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <exception>
#include <functional>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

#include "cli/args.h"
#include "cli/commands.h"
#include "format/mapped_file.h"
#include "tokenizer/gpt2_files.h"
#include "tokenizer/gpt2_pretokenize.h"
#include "runtime/model.h"
#include "tokenizer/tokenizer.h"
#include "util/json.h"

namespace minigpt::cli {

namespace {

// Standard output through one 64 KiB buffer, written with write(2) each time it
// fills: the ids of a long text stream out as they are formatted, with no output
// string that grows (and is copied and page-faulted) with the text.
class OutWriter {
public:
    OutWriter() = default;
    OutWriter(const OutWriter&) = delete;
    OutWriter& operator=(const OutWriter&) = delete;
    void id(int32_t v) {
        if (kSize - used_ < 16) flush();
        used_ = size_t(std::to_chars(buf_ + used_, buf_ + kSize, v).ptr - buf_);
    }
    void put(char c) {
        if (used_ == kSize) flush();
        buf_[used_++] = c;
    }
    void put(const std::string& s) {
        if (s.size() > kSize - used_) flush();
        if (s.size() > kSize) return write_all(s.data(), s.size());
        std::memcpy(buf_ + used_, s.data(), s.size());
        used_ += s.size();
    }
    void flush() {
        write_all(buf_, used_);
        used_ = 0;
    }

private:
    static void write_all(const char* p, size_t n) {
        while (n > 0) {
            const ssize_t w = ::write(STDOUT_FILENO, p, n);
            if (w < 0 && errno == EINTR) continue;
            if (w < 0) throw std::runtime_error(std::string("standard output: cannot write: ") + std::strerror(errno));
            p += w, n -= size_t(w);
        }
    }
    static constexpr size_t kSize = 1 << 16;
    char buf_[kSize];
    size_t used_ = 0;
};

// GPT-2 BPE on a long text: encoded about kPieceBytes at a time, cut where the
// pre-tokenizer must cut (gpt2_split_point: the ids are those of the whole text),
// on this thread, while a second thread formats and writes the ids of the piece
// before. The process then runs at about the encoder's own rate instead of the
// encoder's plus the formatting's (a third of it for GPT-2's ~4-byte tokens).
constexpr size_t kPieceBytes = 1 << 20;

void encode_and_write_in_pieces(const Tokenizer& tok, std::string_view text, bool special,
                                const std::function<void(int32_t)>& emit) {
    std::mutex mutex;
    std::condition_variable changed;
    std::deque<std::vector<int32_t>> ready;  // at most two pieces wait
    bool done = false;
    std::exception_ptr write_error;
    std::thread writer([&] {
        try {
            for (;;) {
                std::vector<int32_t> ids;
                {
                    std::unique_lock<std::mutex> lock(mutex);
                    changed.wait(lock, [&] { return done || !ready.empty(); });
                    if (ready.empty()) return;
                    ids = std::move(ready.front());
                    ready.pop_front();
                }
                changed.notify_all();
                for (int32_t id : ids) emit(id);
            }
        } catch (...) {
            std::lock_guard<std::mutex> lock(mutex);
            write_error = std::current_exception();
            changed.notify_all();
        }
    });
    for (size_t pos = 0; pos < text.size();) {
        const size_t end = gpt2_split_point(text, pos + kPieceBytes);
        std::vector<int32_t> ids = tok.encode(text.substr(pos, end - pos), special);
        pos = end;
        std::unique_lock<std::mutex> lock(mutex);
        changed.wait(lock, [&] { return ready.size() < 2 || write_error; });
        if (write_error) break;
        ready.push_back(std::move(ids));
        lock.unlock();
        changed.notify_all();
    }
    {
        std::lock_guard<std::mutex> lock(mutex);
        done = true;
    }
    changed.notify_all();
    writer.join();
    if (write_error) std::rethrow_exception(write_error);
}

}  // namespace

int cmd_tokenize(int argc, char** argv) {
    Options opts =
        command_options(argv[0], "Print the token ids of a text (from -p, -f FILE, or stdin when neither is given).\n"
                                 "The tokenizer comes from a GGUF model (-m) or from GPT-2's vocab.json + merges.txt.\n"
                                 "BOS is prepended when the tokenizer asks for it (SentencePiece models), as llama.cpp "
                                 "does.");
    add_model_option(opts, "GGUF model whose tokenizer to use");
    add_prompt_option(opts, "the text");
    add_file_option(opts, "read the text from FILE (- = stdin), byte for byte");
    // clang-format off
    opts.add_options()
        ("vocab", "GPT-2 vocab.json (with --merges)", text_value(), "FILE")
        ("merges", "GPT-2 merges.txt (with --vocab)", text_value(), "FILE")
        ("pieces", "one line per token: id, then its text as a JSON string (invalid UTF-8 as U+FFFD)")
        ("special", "special-token text (e.g. <|endoftext|>) becomes the special token; default: ordinary text")
        ("no-bos", "never prepend BOS");
    // clang-format on
    ParsedFlags r;
    if (!parse_flags(opts, argc, argv, r)) return 0;
    const bool from_gguf = r.count("model") > 0, from_files = r.count("vocab") + r.count("merges") > 0;
    if (from_gguf && from_files) usage_error("give either -m/--model or --vocab and --merges, not both");
    if (!from_gguf && !from_files) usage_error("no tokenizer: give -m/--model FILE.gguf, or --vocab and --merges");
    if (from_files && (!r.count("vocab") || !r.count("merges")))
        usage_error(std::string("--vocab and --merges go together; ") + (r.count("vocab") ? "--merges" : "--vocab") +
                    " is missing");
    if (r.count("prompt") && r.count("file")) usage_error("give only one of -p/--prompt and -f/--file");

    TokenizerSpec spec;
    if (from_gguf) {
        const std::string path = r.value("model");
        require_file(path, "-m/--model");
        spec = Model::load(path)->tokenizer_spec();
    } else {
        require_file(r.value("vocab"), "--vocab");
        require_file(r.value("merges"), "--merges");
        spec = load_gpt2_files(r.value("vocab"), r.value("merges"));
    }
    const std::unique_ptr<Tokenizer> tok = make_tokenizer(spec);

    std::string owned;
    std::unique_ptr<MappedFile> mapped;
    std::string_view text;
    if (r.count("prompt")) {
        text = owned = r.value("prompt");
    } else {
        const std::string path = r.count("file") ? r.value("file") : "-";
        struct stat st {};
        if (path != "-" && ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0) {
            // A file is encoded where it lies in the page cache, never copied.
            mapped = std::make_unique<MappedFile>(path);
            text = std::string_view(reinterpret_cast<const char*>(mapped->data()), size_t(mapped->size()));
        } else {
            text = owned = read_input(path, "-f/--file");  // stdin, an empty file, or the error that names it
        }
    }
    const bool bos = tok->add_bos() && tok->bos_id() >= 0 && !r.count("no-bos");
    const bool special = r.count("special") > 0, pieces = r.count("pieces") > 0;

    OutWriter out;  // BOS, then the text's ids, formatted straight into the buffer
    bool first = true;
    auto emit = [&](int32_t id) {
        if (pieces) {
            // Control tokens (SentencePiece's <s>) decode to nothing: show their name instead.
            std::string piece = tok->token_bytes(id);
            if (piece.empty() && size_t(id) < spec.tokens.size()) piece = spec.tokens[size_t(id)];
            out.id(id);
            out.put('\t');
            out.put(json_quote(piece));
            out.put('\n');
        } else {
            if (!first) out.put(' ');
            first = false;
            out.id(id);
        }
    };
    if (bos) emit(tok->bos_id());
    if (spec.model == "gpt2" && text.size() > 2 * kPieceBytes) {
        encode_and_write_in_pieces(*tok, text, special, emit);
    } else {
        for (int32_t id : tok->encode(text, special)) emit(id);
    }
    if (!pieces) out.put('\n');
    out.flush();
    return 0;
}

}  // namespace minigpt::cli

namespace {
minigpt::cli::RegisterCommand reg{"tokenize", minigpt::cli::cmd_tokenize,
                                  "print the token ids (or pieces) of a text", 20};
}
