"""scripts/reference.py against a GPT-2 forward written with torch's own ops.

The torch side loads pytorch_model.bin with torch.load (not our reader) and uses
torch.nn.functional.layer_norm, gelu(approximate="tanh"), softmax and
Hugging Face's head_mask semantics (attention probabilities times a 0/1 mask),
all in float64. Tolerance: 3e-14 absolute on logits of magnitude ~1-4 (the two
float64 computations differ only in the order of their sums).
"""
import contextlib
import io
import os
import subprocess
import sys
import tempfile
import unittest

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "e2e"))
# helpers puts scripts/ (SCRIPTS) on sys.path; require: missing engines skip with how to install, fail in CI
from helpers import SCRIPTS, require  # noqa: E402
import make_random_model  # noqa: E402
import reference  # noqa: E402

try:
    import torch
    import torch.nn.functional as F
except ImportError:
    torch = None

TOL = 3e-14  # measured 3.2e-15 (max over tied, untied, f16, ablations) on AMD EPYC (Debian 12); bound ~10x


def torch_gpt2(sd, cfg, ids, head_mask=None, mean_z=None):
    """GPT-2 as Hugging Face's modeling_gpt2 computes it, in torch float64.
    head_mask: (n_layer, n_head) of 0/1 multiplying the attention probabilities;
    mean_z: {(L, H): (head_dim,) tensor} added where the mask removed a head."""
    g = {k[len("transformer."):] if k.startswith("transformer.") else k: v.double() for k, v in sd.items()}
    n_head, E = cfg["n_head"], cfg["n_embd"]
    D, T, eps = E // n_head, len(ids), cfg["layer_norm_epsilon"]
    ids = torch.tensor(ids)
    x = g["wte.weight"][ids] + g["wpe.weight"][:T]
    causal = torch.tril(torch.ones(T, T, dtype=torch.bool))
    zs = []
    for i in range(cfg["n_layer"]):
        p = f"h.{i}."
        a = F.layer_norm(x, (E,), g[p + "ln_1.weight"], g[p + "ln_1.bias"], eps)
        qkv = torch.addmm(g[p + "attn.c_attn.bias"], a, g[p + "attn.c_attn.weight"])  # HF Conv1D
        q, k, v = (t.view(T, n_head, D).transpose(0, 1) for t in qkv.split(E, dim=1))
        w = torch.matmul(q, k.transpose(-1, -2)) / torch.tensor(D, dtype=torch.float64).sqrt()
        w = w.masked_fill(~causal, torch.finfo(torch.float64).min)
        w = torch.softmax(w, dim=-1)
        if head_mask is not None:
            w = w * head_mask[i].view(n_head, 1, 1)
        z = torch.matmul(w, v)  # (H, T, D)
        zs.append(z.transpose(0, 1).clone())
        if mean_z:
            for (L, h), m in mean_z.items():
                if L == i:
                    z[h] = z[h] + m
        x = x + torch.addmm(g[p + "attn.c_proj.bias"], z.transpose(0, 1).reshape(T, E), g[p + "attn.c_proj.weight"])
        m = F.layer_norm(x, (E,), g[p + "ln_2.weight"], g[p + "ln_2.bias"], eps)
        h = F.gelu(torch.addmm(g[p + "mlp.c_fc.bias"], m, g[p + "mlp.c_fc.weight"]), approximate="tanh")
        x = x + torch.addmm(g[p + "mlp.c_proj.bias"], h, g[p + "mlp.c_proj.weight"])
    x = F.layer_norm(x, (E,), g["ln_f.weight"], g["ln_f.bias"], eps)
    return (x @ g["lm_head.weight"].T).numpy(), zs


class AgainstTorch(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        require("torch")
        cls.tmp = tempfile.TemporaryDirectory()
        cls.models = {}
        # std 0.1 gives peaked attention and logits of a few units, unlike 0.02.
        for name, extra in (("tied", []), ("untied", ["--untied"]), ("f16", ["--dtype", "float16"])):
            d = os.path.join(cls.tmp.name, name)
            with contextlib.redirect_stderr(io.StringIO()) as err:  # in-process: torch is already imported
                if make_random_model.main([d, "--preset", "tiny", "--format", "both", "--std", "0.1",
                                           "--seed", "3", *extra]):
                    raise RuntimeError(err.getvalue())
            cls.models[name] = d
        cls.ids = [int(i) for i in np.random.RandomState(5).randint(0, 1024, 40)]

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def load(self, name):
        d = self.models[name]
        sd = torch.load(os.path.join(d, "pytorch_model.bin"))
        return reference.load_hf(d), sd

    def compare(self, ours, theirs, what):
        diff = float(np.abs(ours - theirs).max())
        print(f"\n  {what}: max |reference - torch| = {diff:.3g} (tolerance {TOL:g}), "
              f"logit range [{theirs.min():.2f}, {theirs.max():.2f}]")
        self.assertLess(diff, TOL)

    def test_logits_match_torch(self):
        for name in ("tied", "untied", "f16"):
            params, sd = self.load(name)
            theirs, _ = torch_gpt2(sd, self.cfg(params), self.ids)
            self.compare(reference.forward(params, self.ids), theirs, f"{name} logits, {len(self.ids)} tokens")
            if name == "tied":  # the logits are not trivially small or flat
                self.assertGreater(theirs.std(), 0.5)
            # a prefix gives the same rows: causality
            self.compare(reference.forward(params, self.ids[:7]), theirs[:7], f"{name} 7-token prefix")

    @staticmethod
    def cfg(params):
        c = params["config"]
        return {"n_head": c.n_head, "n_embd": c.n_embd, "n_layer": c.n_layer, "layer_norm_epsilon": c.eps}

    def test_zero_ablation_matches_hf_head_mask(self):
        params, sd = self.load("tied")
        heads = [(0, 1), (1, 3)]
        mask = torch.ones(2, 4, dtype=torch.float64)
        for L, H in heads:
            mask[L, H] = 0
        theirs, _ = torch_gpt2(sd, self.cfg(params), self.ids, head_mask=mask)
        ours = reference.forward(params, self.ids, ablate=heads)
        self.compare(ours, theirs, "zero-ablated 0.1,1.3")
        self.assertGreater(np.abs(ours - reference.forward(params, self.ids)).max(), 1e-3)

    def test_mean_ablation(self):
        params, sd = self.load("tied")
        heads = [(1, 2)]
        mean_ids = self.ids[::-1][:25]
        _, zs = torch_gpt2(sd, self.cfg(params), mean_ids)
        means = {(L, H): zs[L][:, H, :].mean(dim=0) for L, H in heads}
        mask = torch.ones(2, 4, dtype=torch.float64)
        mask[1, 2] = 0
        theirs, _ = torch_gpt2(sd, self.cfg(params), self.ids, head_mask=mask, mean_z=means)
        mean_z = reference.mean_head_outputs(params, mean_ids, heads)
        ours = reference.forward(params, self.ids, ablate=heads, mean_z=mean_z)
        self.compare(ours, theirs, "mean-ablated 1.2")

    def test_attention_patterns(self):
        params, _ = self.load("tied")
        _, attn = reference.forward(params, self.ids, return_attention=True)
        self.assertEqual(len(attn), 2)
        for a in attn:
            self.assertEqual(a.shape, (4, 40, 40))
            # measured 2.2e-16 (one ulp) on AMD EPYC; bound 2e-15
            np.testing.assert_allclose(a.sum(axis=-1), 1.0, rtol=0, atol=2e-15)
            self.assertTrue(np.all(np.triu(a, k=1) == 0.0))
        # not uniform: past position 10 a uniform row would be <= 1/11
        self.assertGreater(max(a[:, 10:, :].max() for a in attn), 0.3)

    def test_gelu_matches_torch_tanh_form(self):
        x = np.linspace(-8, 8, 2001)
        theirs = F.gelu(torch.from_numpy(x), approximate="tanh").numpy()
        diff = np.abs(reference.gelu_tanh(x) - theirs).max()
        print(f"\n  GELU: max |reference - torch| = {diff:.3g} (tolerance 1e-15)")
        self.assertLess(diff, 1e-15)  # measured 8.9e-16 (4 ulp of 1.0) on AMD EPYC


class CommandLine(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.hf = os.path.join(cls.tmp.name, "tiny")
        with contextlib.redirect_stderr(io.StringIO()):
            assert make_random_model.main([cls.hf, "--preset", "tiny"]) == 0

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def run_ref(self, *args):
        return subprocess.run([sys.executable, os.path.join(SCRIPTS, "reference.py"), self.hf, *args],
                              capture_output=True, text=True)

    def test_outputs(self):
        out, att = os.path.join(self.tmp.name, "logits"), os.path.join(self.tmp.name, "att")
        p = self.run_ref("--ids", "5 6 7 8", "--out", out, "--dump-attention", att)
        self.assertEqual(p.returncode, 0, p.stderr)
        params = reference.load_hf(self.hf)
        want = reference.forward(params, [5, 6, 7, 8])
        self.assertIn(f"argmax {int(want[-1].argmax())}", p.stdout)
        last = np.load(out)
        self.assertEqual((last.shape, last.dtype), ((1, 1024), np.float64))
        np.testing.assert_array_equal(last[0], want[-1])
        with np.load(att) as z:
            self.assertEqual(sorted(z.files), ["blocks.0.attn.hook_pattern", "blocks.1.attn.hook_pattern"])
            self.assertEqual(z["blocks.1.attn.hook_pattern"].shape, (4, 4, 4))
        p = self.run_ref("--ids", "5,6,7,8", "--out", out, "--all-positions", "--ablate", "1.0,0.3",
                         "--ablate-mode", "mean", "--mean-ids", "9 10 11")
        self.assertEqual(p.returncode, 0, p.stderr)
        mean_z = reference.mean_head_outputs(params, [9, 10, 11], [(1, 0), (0, 3)])
        np.testing.assert_array_equal(np.load(out), reference.forward(params, [5, 6, 7, 8], [(1, 0), (0, 3)], mean_z))

    def test_bad_input_is_one_line_error(self):
        for args, pattern in ((["--ids", "1 2 9999"], r"token ids must lie in \[0, 1024\)"),
                              (["--ids", "1 x"], r"must be integers"),
                              (["--ids", "1", "--ablate", "5.0"], r"head 5\.0 does not exist"),
                              (["--ids", "1", "--ablate", "1-2"], r"must be written L\.H"),
                              (["--ids", " ".join(["1"] * 129)], r"129 tokens exceed the context length 128")):
            p = self.run_ref(*args)
            self.assertEqual(p.returncode, 1, args)
            self.assertNotIn("Traceback", p.stderr)
            self.assertRegex(p.stderr.strip(), "^reference.py: error: .*" + pattern + ".*$")


if __name__ == "__main__":
    unittest.main()
