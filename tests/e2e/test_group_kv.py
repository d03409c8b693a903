"""Grouped key/value heads (GQA/MQA): `minigpt heads group-kv` and the runtime.

Checked, tolerances beside each constant:
  - G = n_head gives back the same tensors: logits identical to the input model's;
  - the written K/V projections are the mean of each group's (numpy on the input's
    float64 weights) and the file's logits equal the float64 reference with shared
    key/value heads (scripts/reference.py reads gpt2.attention.head_count_kv);
  - decoding through the (smaller) KV cache equals one prefill;
  - the KV cache shrinks by n_head / G;
  - files with G = 1 and G = n_head / 2 load in llama.cpp, whose perplexity equals
    minigpt's within 1e-3 relative (the acceptance bound).
"""
import os
import re
import sys
import tempfile
import unittest

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from helpers import SANITIZED, run_minigpt, tiny_model  # noqa: E402
import reference  # noqa: E402  (scripts/ is on sys.path through helpers)
from test_core import IDS, TOL_CACHE, TOL_F32, logits_of  # noqa: E402

N_HEAD = 4  # the tiny model's heads


def group_kv(src, dst, g, *extra):
    p = run_minigpt(["heads", "group-kv", src, dst, "--kv-heads", str(g), *extra], timeout=600)
    if p.returncode != 0:
        raise AssertionError(f"heads group-kv failed ({p.returncode}): {p.stderr.decode()}")
    return p.stdout.decode()


class GroupKv(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.hf, cls.f32 = tiny_model(seed=4, std=0.1)
        cls.files = {}
        for g in (N_HEAD, 2, 1):
            cls.files[g] = os.path.join(cls.tmp.name, f"g{g}.gguf")
            group_kv(cls.f32, cls.files[g], g)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_all_heads_kept_is_the_same_model(self):
        a, b = logits_of(self.f32, IDS), logits_of(self.files[N_HEAD], IDS)
        print(f"\n  group-kv G = n_head: max |logit diff| vs the input = {np.abs(a - b).max():.3g} (must be 0)")
        self.assertEqual(np.abs(a - b).max(), 0.0)

    def test_pooled_projections_are_the_group_means(self):
        src = reference.load_gguf(self.f32)
        c = src["config"]
        E, D = c.n_embd, c.head_dim
        for g in (2, 1):
            out = reference.load_gguf(self.files[g])
            self.assertEqual(out["config"].n_head_kv, g)
            for li, (p_in, p_out) in enumerate(zip(src["layers"], out["layers"])):
                for part in ("weight", "bias"):
                    w_in, w_out = p_in[f"attn.c_attn.{part}"], p_out[f"attn.c_attn.{part}"]
                    self.assertEqual(w_out.shape[-1], E + 2 * g * D)
                    np.testing.assert_array_equal(w_out[..., :E], w_in[..., :E])  # q untouched
                    for k in range(2):  # k, then v
                        blocks = w_in[..., E + k * E:E + (k + 1) * E].reshape(*w_in.shape[:-1], g, N_HEAD // g, D)
                        want = blocks.mean(axis=-2).reshape(*w_in.shape[:-1], g * D)
                        got = w_out[..., E + k * g * D:E + (k + 1) * g * D]
                        # f32 file: the mean is taken in double and rounded once to f32 (measured 6e-9 at most).
                        self.assertLess(np.abs(got - want).max(), 1e-7, f"layer {li} {part} {'kv'[k]}")

    def test_logits_equal_the_float64_reference_with_shared_heads(self):
        for g in (2, 1):
            with self.subTest(kv_heads=g):
                ref = reference.forward(reference.load_gguf(self.files[g]), IDS)
                got = logits_of(self.files[g], IDS)
                diff = np.abs(got - ref).max()
                print(f"\n  G = {g}: max |logit diff| vs float64 reference = {diff:.3g} (tolerance {TOL_F32})")
                self.assertLessEqual(diff, TOL_F32)
                # and the grouping matters: these are not the ungrouped model's logits
                self.assertGreater(np.abs(got - logits_of(self.f32, IDS)).max(), 1e-3)

    def test_decode_through_the_grouped_cache_equals_prefill(self):
        for g in (2, 1):
            full = logits_of(self.files[g], IDS)
            dec = logits_of(self.files[g], IDS, "--mode", "decode")
            batched = logits_of(self.files[g], IDS, "--batch", "3", "-t", "2")
            d1, d2 = np.abs(full - dec).max(), np.abs(full - batched).max()
            print(f"\n  G = {g}: decode vs prefill {d1:.3g}, batches of 3 on 2 threads {d2:.3g} (tolerance {TOL_CACHE})")
            self.assertLessEqual(d1, TOL_CACHE)
            self.assertLessEqual(d2, TOL_CACHE)

    def test_kv_cache_shrinks_by_the_group_size(self):
        text = os.path.join(self.tmp.name, "text.txt")
        with open(text, "w") as f:
            f.write("the cat sat on the mat and the dog ran after it. " * 40)
        for g in (2, 1):
            out = group_kv(self.f32, os.path.join(self.tmp.name, f"m{g}.gguf"), g, "-f", text, "-c", "32", "-t", "1")
            per_token = re.search(r"KV cache per token \(f32, \d+ layers\): (\d+) -> (\d+) bytes", out)
            self.assertIsNotNone(per_token, out)
            before, after = int(per_token.group(1)), int(per_token.group(2))
            self.assertEqual(before, after * (N_HEAD // g), out)
            rows = {m.group(1): float(m.group(2)) for m in re.finditer(r"^(before|after)\s+\S+\s+\S+\s+\S+\s+(\S+)$", out, re.M)}
            self.assertEqual(set(rows), {"before", "after"}, out)
            self.assertEqual(rows["before"] / rows["after"], N_HEAD // g, out)  # whole KiB: exact

    def test_bad_kv_heads_are_refused_naming_the_flag(self):
        # 3 does not divide the file's 4 heads (a runtime error, exit 1); 0 and x are usage errors (exit 2)
        for g, what, code in (("3", "--kv-heads 3 must divide", 1), ("0", "--kv-heads", 2), ("x", "--kv-heads", 2)):
            with self.subTest(g=g):
                dst = os.path.join(self.tmp.name, "bad.gguf")
                p = run_minigpt(["heads", "group-kv", self.f32, dst, "--kv-heads", g], code=code)
                self.assertIn(what, p.stderr.decode())
                self.assertFalse(os.path.exists(dst))


@unittest.skipIf(SANITIZED, "engine-vs-engine figures are checked in the optimized build")
class GroupKvInLlamaCpp(unittest.TestCase):
    def test_grouped_files_load_in_llama_cpp_with_the_same_perplexity(self):
        from test_llama_interop import N_CTX, PPL_RTOL, TEXT, llama, llama_engine, minigpt_json, write_text
        llama_engine()
        _, f32 = tiny_model(seed=6, std=0.1)
        with tempfile.TemporaryDirectory() as tmp, open(TEXT, "rb") as f:
            text = write_text(tmp, "text.txt", f.read(16000))
            for g in (1, N_HEAD // 2):
                path = os.path.join(tmp, f"g{g}.gguf")
                group_kv(f32, path, g)
                ours = minigpt_json(["perplexity", "-m", path, "-f", text, "-c", str(N_CTX), "--chunks", "6",
                                     "--json", "-t", "2"])
                theirs = llama("perplexity", path, "--text-file", text, "-c", N_CTX, "--chunks", 6, "--kv", "f16")
                rel = abs(ours["ppl"] / theirs["ppl"] - 1)
                print(f"\n  G = {g}: PPL minigpt {ours['ppl']:.5f}, llama.cpp {theirs['ppl']:.5f}, rel diff {rel:.2e} "
                      f"(tolerance {PPL_RTOL})")
                self.assertEqual(ours["n_scored"], theirs["n_scored"])
                self.assertLess(rel, PPL_RTOL)


if __name__ == "__main__":
    unittest.main()
