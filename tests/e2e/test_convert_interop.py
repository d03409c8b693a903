"""Converted nanoGPT, llm.c and Hugging Face checkpoints in llama.cpp (issue 17,
acceptance 2).

The files `minigpt convert` writes from nanoGPT's ckpt.pt (GPT-2 BPE with 50304
padded rows, bias=False, torch.compile'd names; and a character-level model with
nanoGPT's meta.pkl), from llm.c's fp32 and bf16 .bin and from Hugging Face folders
(tied and untied heads, GPT-2 and distilgpt2 shapes) load in llama.cpp
(node-llama-cpp, scripts/llama/llama_ref.mjs, as test_llama_interop.py drives it)
and continue a prompt greedily with the same tokens as minigpt; the prompt text is
tokenized to the same ids by both engines. Skipped, saying why, when the npm
packages or python3-torch are missing.
"""
import os
import tempfile
import unittest

from helpers import SANITIZED, run_minigpt
from test_convert_sources import (HF_VARIANTS, SHAKESPEARE, SHAKESPEARE_CHARS, generate, make_hf_folder,
                                  minigpt_convert, torch_or_skip)
from test_llama_interop import llama, llama_engine, minigpt_tokens, write_text

import checkpoint_writers as cw

N_GREEDY = 24
PROMPT = "The meaning of life is that the"


@unittest.skipIf(SANITIZED, "engine-vs-engine figures are checked in the optimized build (the converters run "
                            "under the sanitizers in test_convert_native and test_convert_sources)")
class ConvertedCheckpointsInLlamaCpp(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        torch_or_skip()
        llama_engine()
        cls.tmp = tempfile.TemporaryDirectory()
        d = cls.tmp.name
        cls.files = {}
        args = dict(n_layer=2, n_head=4, n_embd=64, block_size=64, vocab_size=50304, bias=False)
        model = cw.make_nanogpt(args, seed=31)
        os.makedirs(os.path.join(d, "nanogpt"))
        cw.save_nanogpt(os.path.join(d, "nanogpt", "ckpt.pt"), model, args, compiled=True, dataset="openwebtext")
        cls.files["nanoGPT GPT-2 BPE"] = os.path.join(d, "nanogpt.gguf")
        minigpt_convert(os.path.join(d, "nanogpt", "ckpt.pt"), cls.files["nanoGPT GPT-2 BPE"])
        llmc_args = dict(args, vocab_size=50257, bias=True)
        llmc_model = cw.make_nanogpt(llmc_args, seed=32)
        for dtype in ("float32", "bfloat16"):
            src = os.path.join(d, f"gpt2_{dtype}.bin")
            cw.save_llmc(src, llmc_model, llmc_args, dtype)
            cls.files[f"llm.c {dtype}"] = os.path.join(d, f"llmc_{dtype}.gguf")
            minigpt_convert(src, cls.files[f"llm.c {dtype}"])
        chars = cw.write_meta(os.path.join(d, "data", "shakespeare_char", "meta.pkl"), SHAKESPEARE + SHAKESPEARE_CHARS)
        char_args = dict(args, vocab_size=len(chars), block_size=128)
        os.makedirs(os.path.join(d, "out-shakespeare-char"))
        cw.save_nanogpt(os.path.join(d, "out-shakespeare-char", "ckpt.pt"), cw.make_nanogpt(char_args, seed=33),
                        char_args)
        cls.char_model = os.path.join(d, "char.gguf")
        minigpt_convert(os.path.join(d, "out-shakespeare-char", "ckpt.pt"), cls.char_model)
        hf_folders = {"Hugging Face GPT-2, tied head": (2, 4, {}),
                      "Hugging Face GPT-2, untied head": (2, 4, {}, "--untied"),
                      "Hugging Face distilgpt2-shaped": (6, 12, HF_VARIANTS["distilgpt2"]["extra"])}
        for i, (what, shape) in enumerate(hf_folders.items()):
            cls.files[what] = os.path.join(d, f"hf{i}.gguf")
            minigpt_convert(make_hf_folder(os.path.join(d, f"hf{i}"), *shape), cls.files[what])
        cls.prompt = write_text(d, "prompt.txt", PROMPT.encode())
        cls.char_text = write_text(d, "char.txt", SHAKESPEARE.encode())

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def greedy_agrees(self, what, path, ids):
        ours, _ = generate(path, N_GREEDY, ids=ids)
        theirs = llama("greedy", path, "--ids", " ".join(map(str, ids)), "-n", N_GREEDY)["continuation"]
        print(f"\n  {what}: greedy continuation of {len(ids)} prompt ids, minigpt {ours[:10]}...\n"
              f"  {' ' * len(what)}  llama.cpp {theirs[:10]}... equal: {ours == theirs[:len(ours)]}")
        self.assertEqual(len(ours), N_GREEDY)  # no end-of-text within the window on these models
        self.assertEqual(ours, theirs)

    def test_gpt2_bpe_files(self):
        for what in ("nanoGPT GPT-2 BPE", "llm.c float32", "llm.c bfloat16", "Hugging Face GPT-2, tied head",
                     "Hugging Face GPT-2, untied head", "Hugging Face distilgpt2-shaped"):
            with self.subTest(what):
                path = self.files[what]
                ids = minigpt_tokens(path, self.prompt)
                self.assertEqual(ids, llama("tokenize", path, "--text-file", self.prompt)["ids"])
                self.greedy_agrees(what, path, ids)

    def test_character_level_nanogpt(self):
        ours = minigpt_tokens(self.char_model, self.char_text)
        theirs = llama("tokenize", self.char_model, "--text-file", self.char_text)["ids"]
        print(f"\n  character vocabulary: {len(ours)} ids (minigpt) vs {len(theirs)} (llama.cpp), "
              f"equal: {ours == theirs}")
        self.assertEqual(ours, theirs)
        self.assertEqual(len(ours), len(SHAKESPEARE))
        self.greedy_agrees("nanoGPT shakespeare_char", self.char_model, ours[:40])
        p = run_minigpt(["generate", "-m", self.char_model, "-p", "First Citizen:\n", "-n", "40", "--temp", "0"])
        print(f"  minigpt generate: {p.stdout.decode()!r}")


if __name__ == "__main__":
    unittest.main()
