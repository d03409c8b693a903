"""minigpt convert's native path against scripts/convert.py, the converter of record
(issue 17, acceptance 4: converting at the speed of copying the file).

The native path (src/cli/convert_native.cpp) must write the very bytes the script
writes: every case below converts one checkpoint both ways (--via native, --via
script) and compares the files byte for byte, for f32, f16 and q8_0. The script's
own output is checked against the float64 reference and llama.cpp elsewhere
(test_convert_sources.py, test_convert_interop.py), so equal bytes carry those
checks over. What the native path declines (a character vocabulary, tokenizer.json,
a problem in the input) must reach the script, which converts it or names the problem.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

import numpy as np

from helpers import ROOT, SANITIZED, SCRIPTS, minigpt_bin, require

import checkpoint_writers as cw
from hf_checkpoint import read_safetensors, write_safetensors

GPT2_DIR = os.path.join(ROOT, "tests", "data", "tokenizer", "gpt2")
OUTTYPES = ("f32", "f16", "q8_0")
# Each output type goes through its own code: f32 kernel copies or transposes, f16 rows,
# q8_0 blocks. The HF tied model, nanoGPT with its padded vocabulary and the llm.c fp32
# file run all three. The other cases differ from those in how the checkpoint is read
# (a head, half-precision storage, shards, nanoGPT's names and zero biases): f32 and q8_0
# (every tensor converted) cover that, or f32 alone where only the names differ. Under
# the sanitizers (the native half ~10x slower) f16 is left out.
SOME = ("f32", "q8_0")

def convert(src, out, via, *extra):
    t0 = time.perf_counter()
    p = subprocess.run([minigpt_bin(), "convert", src, out, "--via", via, *extra], capture_output=True, timeout=600)
    return p, time.perf_counter() - t0


class NativeEqualsScript(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.d = self.tmp.name

    def tearDown(self):
        self.tmp.cleanup()

    def same_bytes(self, what, src, *extra, outtypes=OUTTYPES):
        for outtype in [t for t in outtypes if t != "f16"] if SANITIZED else outtypes:
            with self.subTest(what=what, outtype=outtype):
                native, script = os.path.join(self.d, "native.gguf"), os.path.join(self.d, "script.gguf")
                p, t_native = convert(src, native, "native", "--outtype", outtype, *extra)
                self.assertEqual(p.returncode, 0, p.stderr.decode()[-2000:])
                p, t_script = convert(src, script, "script", "--outtype", outtype, *extra)
                self.assertEqual(p.returncode, 0, p.stderr.decode()[-2000:])
                with open(native, "rb") as a, open(script, "rb") as b:
                    x, y = a.read(), b.read()
                first = next((i for i in range(min(len(x), len(y))) if x[i] != y[i]), None) if x != y else None
                print(f"\n  {what} {outtype}: {len(x)} bytes, native {t_native:.2f} s, script {t_script:.2f} s, "
                      f"{'identical' if x == y else f'DIFFER (sizes {len(x)}/{len(y)}, first at {first})'}", end="")
                self.assertEqual(len(x), len(y))
                self.assertTrue(x == y, f"first differing byte at {first}")
                os.remove(native)
                os.remove(script)

    def hf(self, name, *flags, n_head=4):
        folder = os.path.join(self.d, name)
        cmd = [sys.executable, os.path.join(SCRIPTS, "make_random_model.py"), folder, "--preset", "tiny", "--seed", "3",
               "--std", "0.1", "--n-head", str(n_head), "--n-embd", str(8 * n_head), "--vocab-from", GPT2_DIR, *flags]
        p = subprocess.run(cmd, capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        return folder

    def test_hugging_face_tied_untied_sharded_and_half_precision(self):
        self.same_bytes("HF tied", self.hf("tied"))
        self.same_bytes("HF untied lm_head", self.hf("untied", "--untied"), outtypes=SOME)
        self.same_bytes("HF float16", self.hf("f16", "--dtype", "float16"), outtypes=SOME)
        self.same_bytes("HF bfloat16", self.hf("bf16", "--dtype", "bfloat16"), outtypes=("f16", "q8_0"))
        self.same_bytes("HF 5 heads (q8_0 falls back to f16: 40 columns)", self.hf("odd", n_head=5), outtypes=("q8_0",))
        # Sharded as save_pretrained shards: model-0000N-of-00002.safetensors + index.
        folder = self.hf("sharded")
        tensors = read_safetensors(os.path.join(folder, "model.safetensors"))
        os.remove(os.path.join(folder, "model.safetensors"))
        names = list(tensors)
        weight_map = {}
        for k, part in enumerate((names[: len(names) // 2], names[len(names) // 2:])):
            shard = f"model-{k + 1:05d}-of-00002.safetensors"
            write_safetensors(os.path.join(folder, shard), {n: tensors[n] for n in part}, {"format": "pt"})
            weight_map.update({n: shard for n in part})
        with open(os.path.join(folder, "model.safetensors.index.json"), "w") as f:
            json.dump({"metadata": {"total_size": 0}, "weight_map": weight_map}, f)
        self.same_bytes("HF sharded (2 shards), --name", folder, "--name", "my model", outtypes=SOME)

    def test_nanogpt_padded_bias_false_compiled(self):
        require("torch")
        base = dict(n_layer=2, n_head=4, n_embd=32, block_size=64, vocab_size=50304, bias=True)
        for what, args, save in (("nanoGPT padded vocab", {}, {}), ("nanoGPT bias=False", {"bias": False}, {}),
                                 ("nanoGPT _orig_mod.", {}, {"compiled": True})):
            model_args = dict(base, **args)
            ckpt = os.path.join(self.d, what.split()[1], "ckpt.pt")
            os.makedirs(os.path.dirname(ckpt))
            cw.save_nanogpt(ckpt, cw.make_nanogpt(model_args, seed=7), model_args, **save)
            self.same_bytes(what, ckpt, outtypes=("f32",) if save or args else OUTTYPES)

    def test_llmc_fp32_and_bf16(self):
        require("torch")
        model_args = dict(n_layer=2, n_head=4, n_embd=32, block_size=64, vocab_size=50257, bias=True)
        model = cw.make_nanogpt(model_args, seed=9)
        for dtype in ("float32", "bfloat16"):
            src = os.path.join(self.d, f"gpt2_{dtype}.bin")
            cw.save_llmc(src, model, model_args, dtype)
            self.same_bytes(f"llm.c {dtype}", src, outtypes=OUTTYPES if dtype == "float32" else SOME)


class Declined(unittest.TestCase):
    """What the native path leaves to the script, and input it refuses."""

    def test_character_vocabulary_and_tokenizer_json_go_to_the_script(self):
        require("torch")
        with tempfile.TemporaryDirectory() as d:
            model_args = dict(n_layer=1, n_head=2, n_embd=16, block_size=32, vocab_size=0, bias=False)
            chars = cw.write_meta(os.path.join(d, "data", "shakespeare_char", "meta.pkl"), "hello world\n")
            model_args["vocab_size"] = len(chars)
            ckpt = os.path.join(d, "out-shakespeare-char", "ckpt.pt")
            os.makedirs(os.path.dirname(ckpt))
            cw.save_nanogpt(ckpt, cw.make_nanogpt(model_args, seed=1), model_args)
            hf = os.path.join(d, "hf")
            p = subprocess.run([sys.executable, os.path.join(SCRIPTS, "make_random_model.py"), hf, "--preset", "tiny",
                                "--vocab-from", GPT2_DIR], capture_output=True, text=True)
            self.assertEqual(p.returncode, 0, p.stderr)
            with open(os.path.join(hf, "vocab.json"), encoding="utf-8") as f:
                vocab = json.load(f)
            with open(os.path.join(hf, "merges.txt"), encoding="utf-8") as f:
                merges = [m for m in f.read().split("\n")[1:] if m]
            with open(os.path.join(hf, "tokenizer.json"), "w", encoding="utf-8") as f:
                json.dump({"model": {"type": "BPE", "vocab": vocab, "merges": merges}}, f)
            os.remove(os.path.join(hf, "vocab.json"))
            os.remove(os.path.join(hf, "merges.txt"))
            for src, why in ((ckpt, "a character vocabulary"), (hf, "tokenizer.json")):
                out = os.path.join(d, "out.gguf")
                p, _ = convert(src, out, "native")
                err = p.stderr.decode()
                self.assertEqual(p.returncode, 1, err)
                self.assertIn("not converted natively", err)
                self.assertIn(why, err)
                self.assertFalse(os.path.exists(out))
                p, _ = convert(src, out, "auto")
                err = p.stderr.decode()
                self.assertEqual(p.returncode, 0, err)
                self.assertIn("running /usr/bin/python3", err)  # the script converted it
                print(f"\n  {os.path.basename(src)}: {err.splitlines()[0]}", end="")
                os.remove(out)

    def test_nan_in_a_copied_or_a_converted_tensor_leaves_no_file(self):
        with tempfile.TemporaryDirectory() as d:
            hf = os.path.join(d, "hf")
            p = subprocess.run([sys.executable, os.path.join(SCRIPTS, "make_random_model.py"), hf, "--preset", "tiny",
                                "--vocab-from", GPT2_DIR], capture_output=True, text=True)
            self.assertEqual(p.returncode, 0, p.stderr)
            clean = read_safetensors(os.path.join(hf, "model.safetensors"))
            # wte: copied by the kernel and checked beside; h.1.mlp.c_proj: transposed and converted.
            for name, outtype in (("wte.weight", "f32"), ("h.1.mlp.c_proj.weight", "f32"), ("wpe.weight", "q8_0")):
                tensors = {k: np.array(v) for k, v in clean.items()}
                tensors[name].flat[tensors[name].size - 3] = np.nan if name != "wpe.weight" else np.inf
                write_safetensors(os.path.join(hf, "model.safetensors"), tensors)
                out = os.path.join(d, "out.gguf")
                p, _ = convert(hf, out, "native", "--outtype", outtype)
                self.assertEqual(p.returncode, 1)
                self.assertIn("NaN or infinity", p.stderr.decode())
                self.assertEqual([f for f in os.listdir(d) if f.startswith("out.gguf")], [])  # no file, no temporary
                p, _ = convert(hf, out, "auto", "--outtype", outtype)
                self.assertEqual(p.returncode, 1)
                self.assertIn(f"tensor for {name.replace('wte', 'token_embd').replace('wpe', 'position_embd')}"
                              if name != "h.1.mlp.c_proj.weight" else "blk.1.ffn_down.weight", p.stderr.decode())
                self.assertIn("contains NaN or infinity", p.stderr.decode())  # the script's words
                self.assertEqual([f for f in os.listdir(d) if f.startswith("out.gguf")], [])


if __name__ == "__main__":
    unittest.main()
