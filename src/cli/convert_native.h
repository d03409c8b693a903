// `minigpt convert`'s native fast path. scripts/convert.py is the converter of
// record; this writes the same file, byte for byte, for the checkpoints people
// have most (llm.c .bin, Hugging Face safetensors folders with vocab.json +
// merges.txt, nanoGPT ckpt.pt with GPT-2 BPE) at the speed of copying the file:
// no interpreter to start, tensors copied by the kernel where nothing changes,
// transposed or converted a tensor at a time otherwise.
#pragma once
#include <string>

namespace minigpt::cli {

struct ConvertRequest {
    std::string src, out, outtype = "f32", name, tokenizer_dir;
    bool tokenizer_dir_given = false;  // else tokenizer_dir is the project's GPT-2 default
    bool quiet = false;
};

// Converts natively and returns true, or returns false with `why_not` saying why
// (a kind, an option or a file only the script reads, or a problem in the input,
// which the script then reports in its own words). No output is left on false.
bool convert_natively(const ConvertRequest& req, std::string& why_not);

}  // namespace minigpt::cli
