"""Attention export end to end: `minigpt heads logits --attention FILE` against
the float64 numpy reference (scripts/reference.py, which reads the Hugging Face
folder, not the GGUF), read back with scripts/read_attention.py.

Acceptance: every layer's, head's and position's weight within 1e-5 of the
reference (f32 export), each row sums to 1 and is zero above the diagonal, for
a prompt in one batch, in several batches, and decoded one token at a time.
"""
import os
import struct
import sys
import unittest

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fixtures import TinyModelClass  # noqa: E402
from helpers import run_checked, run_minigpt  # noqa: E402

import read_attention  # noqa: E402  (scripts/ is on sys.path through helpers)
import reference  # noqa: E402

IDS = [5, 300, 17, 1000, 42, 42, 7, 512, 99, 3, 250, 601, 77, 1022, 0, 128, 64, 900, 33, 11,
       300, 17, 1000, 42, 8, 9, 10, 5, 300, 17]  # 30 tokens, with repeats
# Measured on AMD EPYC (AVX-512): max over one batch, batches of 7, decoding and an ablated run.
TOL_F32 = 1e-5   # f32 export against float64: measured 1.3e-6
TOL_F16 = 1e-3   # f16 export: weights rounded to 11 significant bits, measured 2.4e-4
TOL_SUM = 2e-6   # |row sum - 1| of the f32 export: measured 2.4e-7
TOL_SUM_F16 = 3e-3  # of the f16 export (each weight rounded to f16): measured 3.2e-4


class AttentionExport(TinyModelClass):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        _, att = reference.forward(cls.params, IDS, return_attention=True)
        cls.ref = np.stack(att)  # (n_layer, n_head, T, T)

    def export(self, *extra, ids=IDS, attention_type="f32"):
        path = self.path(f"attn_{attention_type}.bin")
        p = run_minigpt(["heads", "logits", "-m", self.gguf, "--ids", " ".join(map(str, ids)), "--attention", path,
                         "--attention-type", attention_type, *extra])
        self.assertEqual(p.returncode, 0, p.stderr.decode())
        return path, read_attention.load_attention(path)

    def check_against(self, a, ref, what, tol=TOL_F32):
        self.assertEqual(a.weights.shape, ref.shape)
        diff = np.abs(a.weights - ref).max()
        sums = np.abs(a.weights.sum(-1) - 1).max()
        upper = np.triu(np.ones(ref.shape[-2:], dtype=bool), k=1)
        print(f"\n  {what}: max |export - float64 reference| = {diff:.3g} (tolerance {tol}), "
              f"max |row sum - 1| = {sums:.3g}, {len(a.blocks)} block(s)")
        self.assertLessEqual(diff, tol)
        self.assertLessEqual(sums, TOL_SUM if tol == TOL_F32 else TOL_SUM_F16)
        self.assertTrue(np.all(a.weights[..., upper] == 0), "weights above the diagonal must be exactly 0")
        self.assertEqual(a.ids.tolist(), IDS[:ref.shape[-1]])

    def test_prompt_in_one_batch_equals_reference(self):
        _, a = self.export()
        self.assertEqual(a.blocks, [(0, len(IDS))])
        self.check_against(a, self.ref, "one batch, f32")

    def test_prompt_in_batches_and_decoding_equal_reference(self):
        _, a = self.export("--batch", "7")
        self.assertEqual(a.blocks, [(0, 7), (7, 7), (14, 7), (21, 7), (28, 2)])
        self.check_against(a, self.ref, "batches of 7, f32")
        _, a = self.export("--mode", "decode")
        self.assertEqual(a.blocks, [(i, 1) for i in range(len(IDS))])  # one row per generated token
        self.check_against(a, self.ref, "decoded one token at a time, f32")

    def test_f16_export_is_half_the_size_and_close(self):
        path32, _ = self.export()
        path16, a = self.export(attention_type="f16")
        self.assertEqual(a.dtype, "f16")
        L, H, T = self.ref.shape[:3]
        payload = L * H * T * (T + 1) // 2
        self.assertEqual(os.path.getsize(path16), 48 + 16 + 2 * payload + 4 * T)
        self.assertEqual(os.path.getsize(path32), 48 + 16 + 4 * payload + 4 * T)
        self.check_against(a, self.ref, "f16", tol=TOL_F16)

    def test_ablated_run_exports_the_changed_attention(self):
        _, att = reference.forward(self.params, IDS, ablate=[(0, 1), (0, 2)], return_attention=True)
        ref = np.stack(att)
        _, a = self.export("--ablate", "0.1,0.2")
        self.assertGreater(np.abs(ref[1] - self.ref[1]).max(), 1e-2)  # layer 1 sees the change
        self.check_against(a, ref, "heads 0.1 and 0.2 ablated, f32")

    def test_reader_rejects_damaged_files(self):
        path, _ = self.export()
        with open(path, "rb") as f:
            data = f.read()
        bad = self.path("bad.bin")
        cases = [(data[:-3], "expected at"), (b"NOTATTN!" + data[8:], "not a minigpt attention file"),
                 (data[:8] + struct.pack("<I", 9) + data[12:], "version 9"), (data[:20], "shorter than")]
        for content, message in cases:
            with open(bad, "wb") as f:
                f.write(content)
            with self.assertRaises(read_attention.AttentionFormatError) as cm:
                read_attention.load_attention(bad)
            self.assertIn(message, str(cm.exception))
        # The reader's command line reports the error in one line.
        r = run_checked([sys.executable, os.path.join(os.path.dirname(read_attention.__file__), "read_attention.py"),
                         bad], code=1)
        self.assertIn(b"read_attention.py: error:", r.stderr)

    def test_unwritable_path_fails_cleanly(self):
        p = run_minigpt(["heads", "logits", "-m", self.gguf, "--ids", "1 2 3", "--attention", "/nonexistent/a.bin"],
                        code=1)
        self.assertIn(b"/nonexistent/a.bin", p.stderr)
        p = run_minigpt(["heads", "logits", "-m", self.gguf, "--ids", "1 2 3", "--attention", "x.bin",
                         "--attention-type", "bf16"], code=2)
        self.assertIn(b"f16 or f32", p.stderr)
        self.assertFalse(os.path.exists("x.bin"))


if __name__ == "__main__":
    unittest.main()
