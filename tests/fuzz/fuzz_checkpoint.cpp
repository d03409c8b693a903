// Fuzz target: minigpt convert's native checkpoint readers on arbitrary bytes. The
// first byte picks the reader, the rest is the file:
//   0  torch.save zip from memory (format/torch_archive.h), then as nanoGPT's ckpt.pt
//   1  llm.c .bin                   2  model.safetensors in a folder whose config.json
//                                      is make_corpus.py's seed model's (1 layer, 2 heads,
//                                      n_embd 8, n_ctx 8, vocab 300)
// Each returns a checkpoint or throws std::runtime_error, which `minigpt convert`
// takes as "let the script convert it".
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>

#include <unistd.h>

#include "fuzz_target.h"
#include "format/gpt2_checkpoint.h"
#include "format/torch_archive.h"

namespace minigpt::fuzz {

namespace {

// A folder of this process for the files the readers open by path.
const std::string& scratch_folder() {
    static const std::string folder = [] {
        char name[] = "/tmp/minigpt_fuzz_checkpoint_XXXXXX";
        if (!mkdtemp(name)) throw std::logic_error("mkdtemp failed");
        const std::string config = std::string(name) + "/config.json";
        if (FILE* f = std::fopen(config.c_str(), "w")) {
            std::fputs("{\"architectures\": [\"GPT2LMHeadModel\"], \"model_type\": \"gpt2\", \"n_layer\": 1, "
                       "\"n_head\": 2, \"n_embd\": 8, \"n_positions\": 8, \"vocab_size\": 300}", f);
            std::fclose(f);
        }
        return std::string(name);
    }();
    return folder;
}

std::string write_scratch(const std::string& name, const uint8_t* data, size_t size) {
    const std::string path = scratch_folder() + "/" + name;
    FILE* f = std::fopen(path.c_str(), "wb");
    if (!f) throw std::logic_error("cannot write " + path);
    if (size) std::fwrite(data, 1, size, f);
    std::fclose(f);
    return path;
}

}  // namespace

inline int fuzz_checkpoint(const uint8_t* data, size_t size) {
    if (size == 0) return 0;
    const uint8_t mode = data[0] % 3;
    ++data, --size;
    try {
        switch (mode) {
            case 0:
                (void)TorchArchive::load("fuzz/ckpt.pt", data, size);
                (void)read_nanogpt_checkpoint(write_scratch("ckpt.pt", data, size));
                break;
            case 1:
                (void)read_llmc_checkpoint(write_scratch("model.bin", data, size));
                break;
            default:
                write_scratch("model.safetensors", data, size);
                (void)read_hf_safetensors(scratch_folder());
                break;
        }
    } catch (const std::runtime_error&) {
    }
    return 0;
}

FUZZ_TARGET(fuzz_checkpoint)

}  // namespace minigpt::fuzz
