"""`minigpt tokenize` on a text of several MB (issue 18, acceptance 4): the command
encodes GPT-2 BPE in ~1 MiB pieces cut where the pre-tokenizer must cut, on one
thread, while another writes the ids (cmd_tokenize.cpp). The ids must be tiktoken's
for the whole text, whatever the cuts: a 3.4 MB text of the Brown sample, every
hand-written case of gpt2_cases.tsv (all scripts, emoji, whitespace runs, invalid
sequences aside) and lines that end in spaces, tabs and CRLF, compared id for id.
"""
import json
import os
import subprocess
import tempfile
import unittest

from helpers import ROOT, minigpt_bin, require, run_checked
from test_tiktoken_golden import NODE_DIR, read_cases

DATA = os.path.join(ROOT, "tests", "data", "tokenizer")
ENCODE = """
import fs from "node:fs";
import { get_encoding } from "tiktoken";
const enc = get_encoding("gpt2");
fs.writeFileSync(process.argv[2], JSON.stringify(Array.from(enc.encode_ordinary(fs.readFileSync(process.argv[1], "utf8")))));
"""


class LongText(unittest.TestCase):
    def test_ids_of_a_long_text_equal_tiktoken(self):
        require("tiktoken")
        with open(os.path.join(DATA, "gpt2_brown.txt"), encoding="utf-8") as f:
            brown = f.read()
        cases = "\n".join(text for _, mode, text, _ in read_cases() if mode != "all")
        odd_lines = "".join(f"line {i} \t \r\n  indented\n\n\n{i}'s\n" for i in range(2000))
        text = brown + cases + odd_lines + brown + "\n" + cases + brown + odd_lines
        with tempfile.TemporaryDirectory() as d:
            path, ref = os.path.join(d, "long.txt"), os.path.join(d, "ids.json")
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
            run_checked(["node", "--input-type=module", "-e", ENCODE, path, ref], cwd=NODE_DIR, timeout=300)
            with open(ref) as f:
                want = json.load(f)
            p = subprocess.run([minigpt_bin(), "tokenize", "--vocab", os.path.join(DATA, "gpt2", "vocab.json"),
                                "--merges", os.path.join(DATA, "gpt2", "merges.txt"), "-f", path],
                               capture_output=True, timeout=300)
            self.assertEqual(p.returncode, 0, p.stderr.decode())
            got = [int(t) for t in p.stdout.split()]
        size = len(text.encode("utf-8"))
        first = next((i for i, (a, b) in enumerate(zip(got, want)) if a != b), None)
        print(f"\n  {size / 1e6:.2f} MB ({size >> 20} pieces of 1 MiB or more): {len(got)} ids, tiktoken {len(want)}, "
              f"{'equal' if got == want else f'first difference at id {first}'}")
        self.assertGreater(size, 3 << 20)  # several pieces
        self.assertEqual(len(got), len(want))
        self.assertEqual(got, want)


if __name__ == "__main__":
    unittest.main()
