"""The bundled model (model/minigpt-brown.gguf): it loads, its SentencePiece ids
equal python3-sentencepiece's, and greedy decoding follows the float64 numpy
reference (scripts/reference.py reading the same GGUF) token by token."""
import json
import os
import tempfile
import unittest

import numpy as np

from helpers import ROOT, SANITIZED, run_minigpt

import reference
from gguf import GGUFReader

MODEL = os.path.join(ROOT, "model", "minigpt-brown.gguf")
PROMPT = "The old man looked at the"
STEPS = 8 if SANITIZED else 24
MIXED = ("Hello  world,\n\n  tabs\there; numbers 1234567 and 3.14159.\r\n"
         "Accents: café, naïve, Ærø; Greek: αβγ; Cyrillic: мир; CJK: 世界; emoji: 🙂👍🏽; "
         "math: 𝑥² ≤ ∞. Trailing spaces   ")


def sentencepiece_of(path):
    import sentencepiece as spm
    proto = bytes(np.asarray(GGUFReader(path).value("tokenizer.sentencepiece.model_proto"), dtype=np.uint8))
    sp = spm.SentencePieceProcessor()
    sp.LoadFromSerializedProto(proto)
    return sp


class BundledModel(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not os.path.isfile(MODEL):
            raise AssertionError(f"the bundled model {MODEL} is missing")
        cls.sp = sentencepiece_of(MODEL)

    def test_sentencepiece_ids_equal_the_library(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "mixed.txt")
            with open(path, "w", encoding="utf-8", newline="") as f:
                f.write(MIXED)
            p = run_minigpt(["tokenize", "-m", MODEL, "-f", path, "--no-bos"])
            self.assertEqual(p.returncode, 0, p.stderr.decode())
            ours = [int(x) for x in p.stdout.split()]
        # tokenize -f drops one trailing newline as llama.cpp does; MIXED ends in spaces.
        theirs = self.sp.encode(MIXED)
        self.assertEqual(ours, theirs)
        self.assertEqual(self.sp.decode(ours), MIXED)
        byte_pieces = sum(1 for i in ours if self.sp.is_byte(i))
        print(f"\n  {len(ours)} ids equal python3-sentencepiece's ({byte_pieces} byte-fallback pieces); decode gives the text back")

    def test_greedy_continuation_follows_the_float64_reference(self):
        params = reference.load_gguf(MODEL)
        ids = [self.sp.bos_id()] + self.sp.encode(PROMPT)
        p = run_minigpt(["generate", "-m", MODEL, "-p", PROMPT, "-n", str(STEPS), "--temp", "0", "--json",
                         "--ignore-eos", "-t", "1"])
        self.assertEqual(p.returncode, 0, p.stderr.decode())
        got = [json.loads(line)["id"] for line in p.stdout.decode().splitlines() if line.strip()]
        self.assertEqual(len(got), STEPS)
        seq, min_gap = list(ids), np.inf
        for step, token in enumerate(got):
            logits = reference.forward(params, seq)[-1]
            top2 = np.sort(logits)[-2:]
            min_gap = min(min_gap, top2[1] - top2[0])
            self.assertEqual(token, int(logits.argmax()), f"step {step}: minigpt chose {token}, reference {logits.argmax()}")
            seq.append(token)
        print(f"\n  {STEPS} greedy steps equal the reference argmax (smallest top-2 logit gap {min_gap:.3g}): "
              f"{self.sp.decode(got)!r}")

    def test_bos_chunk_perplexity_equals_the_reference(self):
        # The model card's validation figure uses this protocol (scripts/train.py):
        # chunks of c tokens, each run as [BOS] + chunk[:-1], every token scored.
        text = (PROMPT + " window and saw the rain falling on the quiet street below. ") * 12
        c = 64
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "text.txt")
            with open(path, "w") as f:
                f.write(text)
            p = run_minigpt(["perplexity", "-m", MODEL, "-f", path, "-c", str(c), "--bos-chunks", "-t", "1", "--json"])
        got = json.loads(p.stdout)
        self.assertEqual(got["protocol"], "bos-chunks")
        ours = got["ppl"]
        params = reference.load_gguf(MODEL)
        ids = self.sp.encode(text)
        nll = 0.0
        for start in range(0, len(ids), c):
            chunk = ids[start:start + c]
            logits = reference.forward(params, [self.sp.bos_id()] + chunk[:-1])
            m = logits.max(axis=1, keepdims=True)
            logp = logits - m - np.log(np.exp(logits - m).sum(axis=1, keepdims=True))
            nll -= logp[np.arange(len(chunk)), chunk].sum()
        ref = float(np.exp(nll / len(ids)))
        rel = abs(ours - ref) / ref
        print(f"\n  --bos-chunks PPL {ours:.6f} vs float64 reference {ref:.6f} over {len(ids)} tokens: relative "
              f"difference {rel:.2g} (tolerance 1.2e-6)")
        self.assertLess(rel, 1.2e-6)  # measured 1.2e-7 on AMD EPYC (AVX-512)


if __name__ == "__main__":
    unittest.main()
