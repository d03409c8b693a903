"""Runtime core end to end: the binary's logits against the float64 numpy
reference (scripts/reference.py, which reads the Hugging Face folder, not the
GGUF), both checkpoint formats, KV-cache decoding, bad files, and memory."""
import os
import sys
import tempfile
import unittest

import numpy as np

from helpers import ROOT, SANITIZED, SCRIPTS, run_checked, run_minigpt, tiny_model

import reference  # scripts/ is on sys.path through helpers

IDS = [5, 300, 17, 1000, 42, 42, 7, 512, 99, 3, 250, 601, 77, 1022, 0, 128, 64, 900, 33, 11]  # 20 tokens
# Measured on AMD EPYC (AVX-512 kernels), tiny model, logits of magnitude ~1-4:
TOL_F32 = 2e-5     # max |logit difference| against float64, f32 weights: measured 1.9e-6
TOL_F16 = 1e-2     # f16 weights (every weight rounded to 11 significant bits): measured 2.0e-3
TOL_CACHE = 1e-5   # decoding through the KV cache vs one prefill: measured 2.0e-6 (batches of 3: 0)
TOL_GGUF_READ = 2.5e-10  # reference from the GGUF vs from the folder (eps stored as f32): measured 2.5e-11


def logits_of(gguf, ids, *extra):
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "logits.npy")
        run_minigpt(["logits", "-m", gguf, "--ids", " ".join(map(str, ids)), "--all", "-o", out, *extra])
        return np.load(out).astype(np.float64)


class LogitsAgainstReference(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.hf, cls.gguf32 = tiny_model(seed=3, std=0.1, outtype="f32", extra=("--format", "both"))
        _, cls.gguf16 = tiny_model(seed=3, std=0.1, outtype="f16", extra=("--format", "both"))
        cls.ref = reference.forward(reference.load_hf(cls.hf), IDS)

    def test_f32_matches_float64_reference(self):
        got = logits_of(self.gguf32, IDS)
        diff = np.abs(got - self.ref).max()
        print(f"\n  f32 GGUF vs float64 reference, {len(IDS)} positions: max |diff| = {diff:.3g} (tolerance {TOL_F32})")
        self.assertLessEqual(diff, TOL_F32)

    def test_f16_matches_float64_reference(self):
        got = logits_of(self.gguf16, IDS)
        diff = np.abs(got - self.ref).max()
        print(f"\n  f16 GGUF vs float64 reference: max |diff| = {diff:.3g} (tolerance {TOL_F16})")
        self.assertLessEqual(diff, TOL_F16)
        self.assertTrue((got.argmax(-1) == self.ref.argmax(-1)).mean() > 0.9)

    def test_reference_reads_the_gguf_like_the_folder(self):
        # The bundled model ships only as GGUF: its reference reads the GGUF.
        diff = np.abs(reference.forward(reference.load_gguf(self.gguf32), IDS) - self.ref).max()
        print(f"\n  reference from GGUF vs from the HF folder: {diff:.3g} (tolerance {TOL_GGUF_READ})")
        self.assertLessEqual(diff, TOL_GGUF_READ)

    def test_decode_through_cache_equals_prefill(self):
        full = logits_of(self.gguf32, IDS)
        dec = logits_of(self.gguf32, IDS, "--mode", "decode")
        batched = logits_of(self.gguf32, IDS, "--batch", "3", "-t", "2")
        d1, d2 = np.abs(full - dec).max(), np.abs(full - batched).max()
        print(f"\n  decode vs prefill: {d1:.3g}; batches of 3 on 2 threads vs one batch: {d2:.3g} (tolerance {TOL_CACHE})")
        self.assertLessEqual(d1, TOL_CACHE)
        self.assertLessEqual(d2, TOL_CACHE)

    def test_safetensors_and_pytorch_bin_give_the_same_model(self):
        with tempfile.TemporaryDirectory() as d:
            outs = {}
            for src in ("safetensors", "bin"):
                out = os.path.join(d, f"{src}.gguf")
                run_checked([sys.executable, os.path.join(SCRIPTS, "convert.py"), self.hf, out, "--source", src, "-q"])
                outs[src] = logits_of(out, IDS)
            diff = np.abs(outs["safetensors"] - outs["bin"]).max()
            print(f"\n  safetensors vs pytorch_model.bin GGUF logits: max |diff| = {diff}")
            self.assertEqual(diff, 0.0)


class BadFiles(unittest.TestCase):
    """The binary reports a bad model on one line naming the file, and exits non-zero."""

    def check(self, data, expect):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "bad.gguf")
            with open(path, "wb") as f:
                f.write(data)
            p = run_minigpt(["logits", "-m", path, "--ids", "1 2"], code=1)  # also: no sanitizer report
            err = p.stderr.decode()
            self.assertEqual(len(err.strip().splitlines()), 1, err)
            self.assertIn(path, err)
            self.assertIn(expect, err)
            self.assertNotIn("Sanitizer", err)

    def test_empty(self):
        self.check(b"", "empty")

    def test_wrong_magic(self):
        self.check(b"GGML" + b"\0" * 60, "not a GGUF file")

    def test_truncated(self):
        _, gguf = tiny_model(seed=3, std=0.1, outtype="f32")
        with open(gguf, "rb") as f:
            data = f.read()
        self.check(data[:100], "truncated")
        self.check(data[: len(data) // 2], "past the end of the file")

    def test_missing_file(self):
        p = run_minigpt(["logits", "-m", "/nonexistent.gguf", "--ids", "1"], code=1)
        self.assertIn("/nonexistent.gguf: cannot open", p.stderr.decode())


@unittest.skipIf(SANITIZED, "the 124M model is too slow to make and map under the sanitizers")
class WeightsAreMapped(unittest.TestCase):
    def test_resident_memory_of_124m_f32(self):
        with tempfile.TemporaryDirectory() as d:
            hf, gguf = os.path.join(d, "hf"), os.path.join(d, "m.gguf")
            for cmd in ([sys.executable, os.path.join(SCRIPTS, "make_random_model.py"), hf, "--preset", "gpt2-124m"],
                        [sys.executable, os.path.join(SCRIPTS, "convert.py"), hf, gguf, "-q"]):
                run_checked(cmd)
            p = run_minigpt(["logits", "-m", gguf, "--ids", " ".join(["1"] * 64), "--mem"])
            self.assertEqual(p.returncode, 0, p.stderr.decode())
            line = [l for l in p.stdout.decode().splitlines() if l.startswith("file ")][0]
            print("\n  " + line)
            f = [float(x) for x in line.replace(",", " ").split() if x.replace(".", "").isdigit()]
            file_mib, kv_mib, peak_mib = f[0], f[1], f[2]
            self.assertLess(peak_mib, file_mib + kv_mib + 64, line)


if __name__ == "__main__":
    unittest.main()
