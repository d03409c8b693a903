"""`generate --trace --dla` and the viewer's display of it.

  trace   each step line's "dla" heads (top --dla-top-k by |value|) equal
          `heads dla` on the same prefix with --target the chosen token
          (prefill instead of decoding through the KV cache: another code path
          for the activations), within 1e-5; the logit equals the trace's own
          top candidate's when the choice is greedy
  viewer  `minigpt view` carries the heads into the page (a head outside the
          model is refused naming the file and line); in headless Chromium
          the step panel of a generated token lists them, and clicking a row
          selects that head
"""
import csv
import json
import os
import tempfile
import unittest

from helpers import require, run_minigpt, tiny_model

import cdp_pipe

PROMPT = [5, 300, 17, 1000, 42, 42, 7, 512]
TOL = 1e-5  # measured 2.3e-7 (decode vs prefill rounding, 7 digits in the trace)


class TraceDla(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.hf, cls.gguf = tiny_model(seed=5, std=0.2)
        cls.tmp = tempfile.TemporaryDirectory()
        cls.trace = os.path.join(cls.tmp.name, "run.jsonl")
        cls.att = os.path.join(cls.tmp.name, "run.attn")
        run_minigpt(["generate", "-m", cls.gguf, "--ids", " ".join(map(str, PROMPT)), "-n", "6", "--temp", "0",
                     "--trace", cls.trace, "--attention", cls.att, "--dla", "--dla-top-k", "4", "-t", "1"])
        with open(cls.trace) as f:
            cls.lines = [json.loads(x) for x in f.read().split("\n") if x]

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_every_step_equals_heads_dla_on_the_prefix(self):
        ids = list(PROMPT)
        worst = 0.0
        for s in self.lines[1:]:
            d = s["dla"]
            self.assertEqual(len(d["heads"]), 4)
            out = os.path.join(self.tmp.name, "dla.csv")
            run_minigpt(["heads", "dla", "-m", self.gguf, "--ids", " ".join(map(str, ids)), "--target", f"#{s['id']}",
                         "--csv", out, "-t", "1"])
            with open(out, newline="") as f:
                want = {row["component"]: float(row["contribution"]) for row in csv.DictReader(f)}
            heads = {k: v for k, v in want.items() if k.startswith("L") and "." not in k}
            ranked = sorted(heads, key=lambda k: -abs(heads[k]))[:4]
            self.assertEqual([f"L{h['layer']}H{h['head']}" for h in d["heads"]], ranked)
            for h in d["heads"]:
                worst = max(worst, abs(h["value"] - heads[f"L{h['layer']}H{h['head']}"]))
            self.assertAlmostEqual(d["logit"], sum(want.values()), delta=1e-4 * max(1, abs(d["logit"])))
            self.assertEqual(s["id"], s["top"][0]["id"])  # greedy: the chosen token is the top candidate
            ids.append(s["id"])
        print(f"\n  trace --dla vs heads dla on each prefix: max |diff| = {worst:.3g} (tolerance {TOL})")
        self.assertLessEqual(worst, TOL)

    def test_dla_needs_a_trace(self):
        p = run_minigpt(["generate", "-m", self.gguf, "--ids", "1 2", "-n", "1", "--dla"], code=2)
        self.assertIn("--dla needs --trace FILE", p.stderr.decode())

    def test_view_refuses_a_head_outside_the_model(self):
        bad = os.path.join(self.tmp.name, "bad.jsonl")
        lines = [dict(x) for x in self.lines]
        lines[2] = json.loads(json.dumps(lines[2]))
        lines[2]["dla"]["heads"][0]["layer"] = 9
        with open(bad, "w") as f:
            f.write("".join(json.dumps(x) + "\n" for x in lines))
        out = os.path.join(self.tmp.name, "bad.html")
        p = run_minigpt(["view", bad, "-o", out], code=1)
        self.assertIn(f"{bad}:3: dla head L9H", p.stderr.decode())
        self.assertFalse(os.path.exists(out))

    def test_viewer_shows_the_heads_of_the_selected_step(self):
        require("chromium")
        html = os.path.join(self.tmp.name, "run.html")
        run_minigpt(["view", self.trace, "-o", html])
        browser = cdp_pipe.Browser()
        try:
            page = browser.new_page(1400, 1000)
            page.navigate("file://" + html)
            self.assertEqual(page.errors(), [])
            t = len(PROMPT) + 2
            step = self.lines[1 + 2]
            page.eval(f"viewer.select({t})")
            shown = page.eval("viewer.stepShown()")
            self.assertIn("direct logit attribution", shown)
            first = step["dla"]["heads"][0]
            self.assertIn(f"L{first['layer']}H{first['head']}", shown)
            self.assertIn(f"{first['value']:+.3f}", shown)
            # Clicking the second row picks that head for the grid and the lines.
            second = step["dla"]["heads"][1]
            page.eval("document.querySelectorAll('#step .lens table')[0].rows[1].click()")
            st = page.eval("viewer.state()")
            self.assertEqual((st["layer"], st["head"]), (second["layer"], second["head"]))
            self.assertEqual(page.errors(), [])
            shot = os.path.join(os.environ.get("MINIGPT_VIEWER_SHOTS") or self.tmp.name, "viewer_dla.png")
            self.assertEqual(page.screenshot(shot)[:8], b"\x89PNG\r\n\x1a\n")
            print(f"\n  screenshot: {shot}")
        finally:
            browser.close()


if __name__ == "__main__":
    unittest.main()
