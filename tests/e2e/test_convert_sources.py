"""Every kind of GPT-2 checkpoint, converted and run (issue 17, acceptance 1).

Each case writes a checkpoint the way its own project does (checkpoint_writers.py:
nanoGPT's torch.save'd ckpt.pt from a copy of model.py's GPT, llm.c's write_model,
Hugging Face folders shaped like gpt2-medium/large/xl and distilgpt2), converts
it with `minigpt convert` (the front door, which runs scripts/convert.py), and
checks the binary's logits against the float64 reference (scripts/reference.py)
computed on the same weights read from the writer's side (torch's tensors, not
our reader's), within test_core's TOL_F32, and the greedy continuation, ids and
text, equal to the reference's.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

import numpy as np

from helpers import ROOT, SCRIPTS, minigpt_bin, require, run_minigpt
from test_core import TOL_F32  # the core tolerance: f32 GGUF vs float64 reference

import checkpoint_writers as cw
import reference  # scripts/ is on sys.path through helpers
from hf_tokenizer import bytes_to_unicode

GPT2_DIR = os.path.join(ROOT, "tests", "data", "tokenizer", "gpt2")
GPT2_EOT = 50256
IDS = [464, 1893, 286, 1204, 318, 257, 1332, 13, 198, 40, 1101, 407, 1654, 11, 475, 50256, 3666, 2068]
# bf16 weights against the unrounded f32 model: every weight moves by up to 2^-9 of itself.
# Measured max |logit difference| 0.0206 on this model (logits of a few units); bound 0.05.
TOL_BF16_VS_F32 = 5e-2
# nanoGPT's exact-erf GELU against GGUF's tanh form (max 4.8e-4 apart per activation), on
# these models: measured 8.8e-4 .. 1.05e-3 on the logits; bound 1e-2.
TOL_ERF_GELU = 1e-2
# tiny shakespeare's 65 characters, the vocabulary of nanoGPT's shakespeare_char
SHAKESPEARE_CHARS = "\n !$&',-.3:;?ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
SHAKESPEARE = ("First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n\n"
               "First Citizen:\nYou are all resolved rather to die than to famish?\n\nAll:\nResolved. resolved.\n"
               "What's this? 3 $ & - ; !\n")


def torch_or_skip():
    """The checkpoints are written with torch.save / torch's bf16: python3-torch is needed
    (skipped saying how to install it, a failure in CI: helpers.require)."""
    require("torch")


def minigpt_convert(src, out, *extra):
    p = subprocess.run([minigpt_bin(), "convert", src, out, *extra], capture_output=True, timeout=600)
    if p.returncode != 0:
        raise AssertionError(f"minigpt convert {src} failed:\n{p.stderr.decode()[-3000:]}")
    return p.stderr.decode()


def logits_of(gguf, ids):
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "logits.npy")
        p = run_minigpt(["logits", "-m", gguf, "--ids", " ".join(map(str, ids)), "--all", "-o", out])
        if p.returncode != 0:
            raise AssertionError(p.stderr.decode())
        return np.load(out).astype(np.float64)


def generate(gguf, n, ids=None, prompt=None):
    """(ids, text) of minigpt's greedy continuation."""
    args = ["generate", "-m", gguf, "-n", str(n), "--temp", "0", "--repeat-last-n", "0", "--json"]
    args += ["--ids", " ".join(map(str, ids))] if ids is not None else ["-p", prompt]
    p = run_minigpt(args)
    if p.returncode != 0:
        raise AssertionError(p.stderr.decode())
    tokens = [json.loads(line) for line in p.stdout.decode().splitlines() if line.startswith("{")]
    tokens = [t for t in tokens if "id" in t]
    return [t["id"] for t in tokens], "".join(t["text"] for t in tokens)


def gpt2_decode(ids):
    decoder = {c: b for b, c in bytes_to_unicode().items()}
    with open(os.path.join(GPT2_DIR, "vocab.json"), encoding="utf-8") as f:
        by_id = {i: t for t, i in json.load(f).items()}
    raw = b"".join(b"" if i == GPT2_EOT else bytes(decoder[c] for c in by_id[i]) for i in ids)
    return raw.decode("utf-8", "replace")


class CheckpointCase(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()

    def tearDown(self):
        self.tmp.cleanup()

    def path(self, *parts):
        p = os.path.join(self.tmp.name, *parts)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        return p

    def check_model(self, what, gguf, params, ids, tol=TOL_F32, n=12, stop_id=GPT2_EOT, decode=gpt2_decode):
        got, ref = logits_of(gguf, ids), reference.forward(params, ids)
        self.assertEqual(got.shape, ref.shape)
        diff = np.abs(got - ref).max()
        ours_ids, ours_text = generate(gguf, n, ids=ids)
        ref_ids = cw.reference_greedy(params, ids, n, stop_id)
        print(f"\n  {what}: vocab {ref.shape[1]}, max |logit - float64 reference| = {diff:.3g} (tolerance {tol}); "
              f"greedy {ours_ids} {'==' if ours_ids == ref_ids else '!='} reference {ref_ids}")
        self.assertLessEqual(diff, tol)
        self.assertEqual(ours_ids, ref_ids)
        self.assertEqual(ours_text, decode(ref_ids))
        return got


class NanoGPT(CheckpointCase):
    """ckpt.pt: torch.save of train.py's dict; GPT-2 BPE vocabulary padded to 50304
    rows (model.py's default), or a character vocabulary from meta.pkl."""

    def setUp(self):
        torch_or_skip()
        super().setUp()

    def convert_nanogpt(self, model_args, seed, folder, **save):
        model = cw.make_nanogpt(model_args, seed=seed)
        ckpt = self.path(folder, "ckpt.pt")
        cw.save_nanogpt(ckpt, model, model_args, **save)
        gguf = self.path(folder + ".gguf")
        log = minigpt_convert(ckpt, gguf)
        return model, gguf, log

    def test_gpt2_vocabulary_padded_bias_and_compiled_variants(self):
        import torch
        base = dict(n_layer=2, n_head=4, n_embd=32, block_size=64, vocab_size=50304, bias=True)
        for what, args, save in (("bias=True", {}, {}), ("bias=False", {"bias": False}, {}),
                                 ("torch.compile'd (_orig_mod.)", {}, {"compiled": True}),
                                 ("numpy best_val_loss", {"bias": False}, {"best_val_loss": np.float64(1.25)})):
            with self.subTest(what):
                model_args = dict(base, **args)
                model, gguf, log = self.convert_nanogpt(model_args, 11, what.split()[0].replace("'", ""),
                                                        dataset="openwebtext", **save)
                self.assertIn("dropped embedding rows 50257..50303", log)
                params = cw.reference_params(cw.linear_state(model), 4, rows=50257)
                got = self.check_model(f"nanoGPT {what}", gguf, params, IDS)
                # What GGUF's tanh GELU does to a model trained with nanoGPT's erf GELU.
                with torch.no_grad():
                    erf = model(torch.tensor([IDS]))[0, :, :50257].double().numpy()
                d_erf = np.abs(got - erf).max()
                print(f"  nanoGPT's own forward (erf GELU) vs minigpt: max |diff| = {d_erf:.3g} "
                      f"(tolerance {TOL_ERF_GELU}), same argmax at {(got.argmax(-1) == erf.argmax(-1)).mean():.0%}")
                self.assertLessEqual(d_erf, TOL_ERF_GELU)

    def test_character_vocabulary_from_meta_pkl(self):
        model_args = dict(n_layer=2, n_head=4, n_embd=32, block_size=128, vocab_size=0, bias=False)
        chars = cw.write_meta(self.path("data", "shakespeare_char", "meta.pkl"), SHAKESPEARE + SHAKESPEARE_CHARS)
        self.assertEqual("".join(chars), SHAKESPEARE_CHARS)
        model_args["vocab_size"] = len(chars)
        # out-shakespeare-char/ckpt.pt beside data/shakespeare_char/meta.pkl, as nanoGPT lays them out
        model, gguf, log = self.convert_nanogpt(model_args, 5, "out-shakespeare-char")
        self.assertIn("characters from", log)
        stoi = {c: i for i, c in enumerate(chars)}
        text = "First Citizen:\nYou are all resolved, speak!  What's this?"
        p = run_minigpt(["tokenize", "-m", gguf, "-p", text])
        self.assertEqual([int(t) for t in p.stdout.split()], [stoi[c] for c in text])
        params = cw.reference_params(cw.linear_state(model), 4, rows=len(chars))
        ids = [stoi[c] for c in text]
        self.check_model("nanoGPT shakespeare_char", gguf, params, ids, n=24, stop_id=None,
                         decode=lambda out: "".join(chars[i] for i in out))
        ours_ids, ours_text = generate(gguf, 24, prompt=text)
        self.assertEqual(ours_ids, cw.reference_greedy(params, ids, 24))
        print(f"  generate -p {text[-10:]!r}: {ours_text!r}")


class LlmC(CheckpointCase):
    """gpt2_124M.bin-style files (fp32, version 3) and _bf16 (version 5), V = 50257
    padded to 50304 rows, GPT-2 BPE from the project's tokenizer files."""

    def setUp(self):
        torch_or_skip()
        super().setUp()

    def test_fp32_and_bf16(self):
        import torch
        model_args = dict(n_layer=2, n_head=4, n_embd=32, block_size=64, vocab_size=50257, bias=True)
        model = cw.make_nanogpt(model_args, seed=21)
        f32 = cw.reference_params(cw.linear_state(model), 4, rows=50257)
        for dtype in ("float32", "bfloat16"):
            with self.subTest(dtype):
                src, gguf = self.path(f"gpt2_{dtype}.bin"), self.path(f"llmc_{dtype}.gguf")
                cw.save_llmc(src, model, model_args, dtype)
                n_params = (50304 + 64) * 32 + 2 * (12 * 32 * 32 + 13 * 32) + 2 * 32  # wte (Vp), wpe, layers, ln_f
                self.assertEqual(os.path.getsize(src), 1024 + n_params * (4 if dtype == "float32" else 2))
                log = minigpt_convert(src, gguf)
                self.assertIn("padded rows 50257..50303 dropped", log)
                exact = cw.reference_params(cw.linear_state(model, torch.bfloat16 if dtype == "bfloat16" else None),
                                            4, rows=50257)
                got = self.check_model(f"llm.c {dtype}", gguf, exact, IDS)
                if dtype == "bfloat16":
                    d = np.abs(got - reference.forward(f32, IDS)).max()
                    print(f"  bf16 file vs the f32 model it was written from: max |logit diff| = {d:.3g} "
                          f"(bf16 bound {TOL_BF16_VS_F32})")
                    self.assertLessEqual(d, TOL_BF16_VS_F32)


# Hugging Face configs as published (n_layer, n_head, n_embd): gpt2-medium 24/16/1024,
# gpt2-large 36/20/1280, gpt2-xl 48/25/1600, distilgpt2 6/12/768. The test models keep
# each n_head and distilgpt2's 6 layers, with head_dim 8 and 2 layers elsewhere so that
# they stay small; their config.json carries the published files' other keys.
HF_VARIANTS = {
    "gpt2-medium": dict(n_layer=2, n_head=16, extra={"n_special": 0, "predict_special_tokens": True}),
    "gpt2-large": dict(n_layer=2, n_head=20, extra={}),
    "gpt2-xl": dict(n_layer=2, n_head=25, extra={"output_past": True}),
    "distilgpt2": dict(n_layer=6, n_head=12, extra={"_num_labels": 1, "id2label": {"0": "LABEL_0"},
                                                    "label2id": {"LABEL_0": 0}}),
}


def make_hf_folder(hf, n_layer, n_head, extra, *flags):
    """A Hugging Face GPT-2 folder of random weights (make_random_model.py, GPT-2's
    vocabulary), its config.json carrying the variant's extra keys as saved by
    transformers."""
    cmd = [sys.executable, os.path.join(SCRIPTS, "make_random_model.py"), hf, "--preset", "tiny", "--seed", "4",
           "--std", "0.1", "--n-layer", str(n_layer), "--n-head", str(n_head), "--n-embd", str(8 * n_head),
           "--vocab-from", GPT2_DIR, *flags]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        raise AssertionError(p.stderr)
    with open(os.path.join(hf, "config.json")) as f:
        cfg = json.load(f)
    cfg.update(extra, n_inner=None, summary_type="cls_index", summary_use_proj=True, use_cache=True,
               task_specific_params={"text-generation": {"do_sample": True, "max_length": 50}})
    with open(os.path.join(hf, "config.json"), "w") as f:
        json.dump(cfg, f)
    return hf


class HuggingFaceVariants(CheckpointCase):
    def make(self, name, n_layer, n_head, extra, *flags):
        return make_hf_folder(self.path(name, "x")[:-2], n_layer, n_head, extra, *flags)

    def test_medium_large_xl_distil_shapes(self):
        for name, v in HF_VARIANTS.items():
            with self.subTest(name):
                hf = self.make(name, v["n_layer"], v["n_head"], v["extra"])
                gguf = self.path(name + ".gguf")
                minigpt_convert(hf, gguf)
                self.check_model(f"{name}-shaped ({v['n_layer']} layers x {v['n_head']} heads)", gguf,
                                 reference.load_hf(hf), IDS)

    def test_untied_head_tokenizer_json_only_and_one_safetensors_file(self):
        hf = self.make("untied", 2, 4, {}, "--untied")
        with open(os.path.join(hf, "config.json")) as f:
            self.assertIs(json.load(f)["tie_word_embeddings"], False)
        # save_pretrained of a fast tokenizer may leave tokenizer.json alone
        with open(os.path.join(hf, "vocab.json"), encoding="utf-8") as f:
            vocab = json.load(f)
        with open(os.path.join(hf, "merges.txt"), encoding="utf-8") as f:
            merges = [m.split(" ") for m in f.read().split("\n")[1:] if m]
        eot = vocab.pop("<|endoftext|>")
        with open(os.path.join(hf, "tokenizer.json"), "w", encoding="utf-8") as f:
            json.dump({"version": "1.0", "added_tokens": [{"id": eot, "content": "<|endoftext|>", "special": True}],
                       "model": {"type": "BPE", "vocab": vocab, "merges": merges}}, f)
        os.remove(os.path.join(hf, "vocab.json"))
        os.remove(os.path.join(hf, "merges.txt"))
        params = reference.load_hf(hf)
        self.assertFalse(np.array_equal(params["lm_head"], params["wte"]))
        for src in (hf, os.path.join(hf, "model.safetensors")):
            gguf = self.path("untied.gguf")
            minigpt_convert(src, gguf)
            self.check_model(f"untied lm_head, tokenizer.json only, from {os.path.basename(src)}", gguf, params, IDS)
            os.remove(gguf)


class FrontDoor(unittest.TestCase):
    """minigpt convert's own behaviour, and the hint every model command gives."""

    def test_generate_on_a_checkpoint_says_how_to_convert_it(self):
        with tempfile.TemporaryDirectory() as d:
            cases = {"ckpt.pt": b"PK\x03\x04" + b"\0" * 60, "gpt2_124M.bin": (20240326).to_bytes(4, "little") * 16,
                     "model.safetensors": (2).to_bytes(8, "little") + b"{}"}
            for name, data in cases.items():
                path = os.path.join(d, name)
                with open(path, "wb") as f:
                    f.write(data)
            hf = os.path.join(d, "hf")
            os.mkdir(hf)
            with open(os.path.join(hf, "config.json"), "w") as f:
                f.write("{}")
            for path in [os.path.join(d, n) for n in cases] + [hf]:
                for cmd in (["generate", "-m", path, "-p", "hi"], ["logits", "-m", path, "--ids", "1"]):
                    p = subprocess.run([minigpt_bin(), *cmd], capture_output=True, timeout=60)
                    err = p.stderr.decode()
                    self.assertEqual(p.returncode, 1, err)
                    self.assertIn(f"minigpt convert {path} OUT.gguf", err)
                    self.assertIn(path, err)
            print(f"\n  e.g. {err.strip()}")

    def test_usage_errors_and_exit_status_passed_through(self):
        with tempfile.TemporaryDirectory() as d:
            out = os.path.join(d, "out.gguf")
            for args, code, text in ((["convert"], 2, "SRC (the checkpoint) is required"),
                                     (["convert", d], 2, "OUT.gguf (the output file) is required"),
                                     (["convert", d, out, "--outtype", "q4_0"], 2, "--outtype: expected f32, f16 or q8_0"),
                                     (["convert", os.path.join(d, "nope"), out], 1, "no such file or folder"),
                                     (["convert", d, out], 1, "no config.json")):  # convert.py's own error
                p = subprocess.run([minigpt_bin(), *args], capture_output=True, timeout=60)
                self.assertEqual(p.returncode, code, p.stderr.decode())
                self.assertIn(text, p.stderr.decode())
                self.assertFalse(os.path.exists(out))
            p = subprocess.run([minigpt_bin(), "convert", "--help"], capture_output=True, timeout=60)
            self.assertEqual(p.returncode, 0)
            self.assertIn("nanoGPT", p.stdout.decode())

    def test_scripts_found_through_minigpt_scripts(self):
        with tempfile.TemporaryDirectory() as d:
            exe = os.path.join(d, "bin", "minigpt")
            os.makedirs(os.path.dirname(exe))
            shutil.copy(minigpt_bin(), exe)  # no scripts/ beside it
            env = {k: v for k, v in os.environ.items() if k != "MINIGPT_SCRIPTS"}
            p = subprocess.run([exe, "convert", d, os.path.join(d, "o.gguf")], capture_output=True, timeout=60, env=env)
            self.assertEqual(p.returncode, 1)
            self.assertIn("cannot find scripts/convert.py", p.stderr.decode())
            self.assertIn("MINIGPT_SCRIPTS", p.stderr.decode())
            env = dict(os.environ, MINIGPT_SCRIPTS=SCRIPTS)
            p = subprocess.run([exe, "convert", d, os.path.join(d, "o.gguf")], capture_output=True, timeout=60, env=env)
            self.assertEqual(p.returncode, 1)
            self.assertIn("no config.json", p.stderr.decode())  # reached convert.py


if __name__ == "__main__":
    unittest.main()
