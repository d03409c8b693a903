"""The GPT-2 tokenizer goldens in tests/data/tokenizer/ against the live engine
they came from: npm tiktoken (scripts/node/node_modules, installed by make deps).

The unit tests (tests/unit/test_bpe_golden.cpp) compare minigpt's BPE with these
files, so this test is what ties them to tiktoken itself: every hand-written case
of gpt2_cases.tsv and all 1 MiB of gpt2_brown.txt, encoded by tiktoken now, must
give the stored ids. Skipped (saying how to install it) without tiktoken; a
failure in CI, which must run every comparison the README names.
"""
import json
import os
import sys
import tempfile
import unittest

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fixtures import read_tsv  # noqa: E402
from helpers import ROOT, require, run_checked  # noqa: E402

DATA = os.path.join(ROOT, "tests", "data", "tokenizer")
NODE_DIR = os.path.join(ROOT, "scripts", "node")
ENCODE = """
import fs from "node:fs";
import { createRequire } from "node:module";
const require = createRequire(process.cwd() + "/package.json");
const { get_encoding } = require("tiktoken");
const enc = get_encoding("gpt2");
const cases = JSON.parse(fs.readFileSync(process.argv[1], "utf8"));
const out = cases.map(([mode, text]) => Array.from(mode === "all" ? enc.encode(text, "all") : enc.encode_ordinary(text)));
const brown = Array.from(enc.encode_ordinary(fs.readFileSync(process.argv[2], "utf8")));
console.log(JSON.stringify({ cases: out, brown }));
"""


def read_cases():
    return [(name, mode, bytes.fromhex(hex_text).decode("utf-8"), [int(i) for i in ids.split()])
            for name, mode, hex_text, ids in read_tsv(os.path.join(DATA, "gpt2_cases.tsv"))]


class TiktokenGoldens(unittest.TestCase):
    def test_goldens_equal_live_tiktoken(self):
        require("tiktoken")
        cases = read_cases()
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "cases.json")
            with open(path, "w", encoding="utf-8") as f:
                json.dump([[mode, text] for _, mode, text, _ in cases], f)
            p = run_checked(["node", "--input-type=module", "-e", ENCODE, path, os.path.join(DATA, "gpt2_brown.txt")],
                            cwd=NODE_DIR, timeout=300)
        got = json.loads(p.stdout)
        differ = [name for (name, _, _, want), ids in zip(cases, got["cases"]) if ids != want]
        brown = np.fromfile(os.path.join(DATA, "gpt2_brown.u16"), dtype="<u2").tolist()
        print(f"\n  {len(cases)} cases: {len(differ)} differ from tiktoken now; Brown text: {len(got['brown'])} ids "
              f"(golden {len(brown)}), equal: {got['brown'] == brown}")
        self.assertEqual(len(got["cases"]), len(cases))
        self.assertEqual(differ, [])
        self.assertEqual(got["brown"], brown)


if __name__ == "__main__":
    unittest.main()
