"""MINIGPT_ISA forces an instruction set's kernels (src/kernels/kernels.h): the forward
pass under MINIGPT_ISA=avx2 (what users without AVX-512 run) and =scalar gives the
logits of the default kernels, `generate --stats` names the kernels in use, and a value
the CPU cannot run or that names no instruction set is refused, named."""
import os
import subprocess
import tempfile
import unittest

import numpy as np

from helpers import ROOT, check_exit, minigpt_bin, tiny_model

BUNDLED = os.path.join(ROOT, "model", "minigpt-brown.gguf")
IDS = "1 450 203 17 99 3 250 1000 7 7 7 42"  # inside every test vocabulary (tiny: 1024)


def cpu_flags():
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    return set()


FLAGS = cpu_flags()
HAS_AVX2 = {"avx2", "fma", "f16c"} <= FLAGS
HAS_AVX512 = {"avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512_vnni"} <= FLAGS


def run_isa(isa, args, code=0):
    env = dict(os.environ)
    env.pop("MINIGPT_ISA", None)
    if isa is not None:
        env["MINIGPT_ISA"] = isa
    p = subprocess.run([minigpt_bin(), *args], capture_output=True, timeout=300, env=env)
    return check_exit(p, code, f"MINIGPT_ISA={isa} minigpt " + " ".join(args))


class KernelIsaTest(unittest.TestCase):
    def logits(self, isa, model, mode):
        with tempfile.TemporaryDirectory() as d:
            out = os.path.join(d, "l.npy")
            run_isa(isa, ["logits", "-m", model, "--ids", IDS, "--all", "--mode", mode, "-t", "2", "-o", out])
            return np.load(out)

    def test_forced_kernels_give_the_default_logits(self):
        isas = ["scalar"] + (["avx2"] if HAS_AVX2 else [])
        _, tiny_f32 = tiny_model()
        _, tiny_q8 = tiny_model(outtype="q8_0")
        for model in (BUNDLED, tiny_f32, tiny_q8):
            for mode in ("prefill", "decode"):
                ref = self.logits(None, model, mode)
                for isa in isas:
                    with self.subTest(model=os.path.basename(model), mode=mode, isa=isa):
                        got = self.logits(isa, model, mode)
                        diff = float(np.max(np.abs(got - ref)))
                        scale = float(np.max(np.abs(ref)))
                        # Summation order only (q8_0's integer dots agree exactly). Measured on AMD EPYC
                        # (AVX-512 default): <= 1.1e-6 of the logit scale; the bound is ~10x that.
                        self.assertLessEqual(diff, 1.2e-5 * scale, f"max |diff| {diff:.3g} (logit scale {scale:.3g})")
                        self.assertTrue(np.array_equal(np.argmax(got, -1), np.argmax(ref, -1)))

    def test_stats_name_the_kernels_in_use(self):
        expected = {"scalar": "scalar"}
        if HAS_AVX2:
            expected["avx2"] = "avx2"
        if HAS_AVX512:
            expected["avx512"] = "avx512"
        for isa, name in expected.items():
            with self.subTest(isa=isa):
                p = run_isa(isa, ["generate", "-m", BUNDLED, "-p", "The old man", "-n", "4", "--temp", "0", "--stats"])
                self.assertIn(f"kernels: {name}\n", p.stderr.decode())
        default = "avx512" if HAS_AVX512 else "avx2" if HAS_AVX2 else "scalar"
        p = run_isa(None, ["generate", "-m", BUNDLED, "-p", "The old man", "-n", "4", "--temp", "0", "--stats"])
        self.assertIn(f"kernels: {default}\n", p.stderr.decode())

    def test_bad_values_are_refused(self):
        p = run_isa("AVX2", ["generate", "-m", BUNDLED, "-p", "The", "-n", "1"], code=1)
        self.assertIn("MINIGPT_ISA=AVX2: unknown instruction set (avx512, avx2 or scalar)", p.stderr.decode())
        self.assertEqual(p.stdout, b"")
        if not HAS_AVX512:
            p = run_isa("avx512", ["generate", "-m", BUNDLED, "-p", "The", "-n", "1"], code=1)
            self.assertIn("MINIGPT_ISA=avx512: this CPU or build cannot run the avx512 kernels", p.stderr.decode())


if __name__ == "__main__":
    unittest.main()
