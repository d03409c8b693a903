"""`minigpt heads` end to end, against independent numpy computations on the
float64 reference (scripts/reference.py reads the Hugging Face folder, not the
GGUF):

  ablation   logits with one head, a whole layer, several heads zeroed, and
             mean-ablated, equal the reference with the same intervention
             (tolerance 5e-5), and differ clearly from the plain logits
  stats      every per-head statistic and the similarity matrix recomputed
             here from the reference's attention with the documented
             definitions (tolerances per statistic, TOL_STATS)
  importance baseline and per-head ablated perplexities recomputed from the
             reference's logits (relative 2e-6); the pruning curve
"""
import csv
import json
import os
import sys
import unittest
import xml.etree.ElementTree as ET

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fixtures import TinyModelClass  # noqa: E402
from helpers import run_minigpt  # noqa: E402

import reference  # noqa: E402

# Measured on AMD EPYC (AVX-512); bounds ~10x.
TOL_LOGITS = 5e-5  # f32 engine vs float64 reference, ablated logits: measured 3.3e-6 .. 5.3e-6
# max |minigpt - numpy| per statistic: measured entropy 1.3e-7, distance 1.5e-6 (values ~15-19),
# sink 7.8e-9, prev_token 1.3e-8, dup_token 1.1e-8, induction 1.3e-8, similarity 4.9e-7
TOL_STATS = {"entropy": 1.3e-6, "distance": 1.5e-5, "sink": 8e-8, "prev_token": 1.3e-7, "dup_token": 1.1e-7,
             "induction": 1.3e-7, "similarity": 5e-6}
# relative, perplexities with heads ablated: measured 1.6e-7 (zero), 1.9e-7 (mean), 4.8e-8
# (importances), 3.3e-8 (pruning curve)
TOL_PPL_REL = 2e-6
N_LAYER, N_HEAD = 2, 4


def ids_str(ids):
    return " ".join(map(str, ids))


def random_ids(n, seed, high=1023, low=0):
    return np.random.RandomState(seed).randint(low, high, size=n).tolist()


class Fixture(TinyModelClass):

    def minigpt(self, *args):
        p = run_minigpt([str(a) for a in args], timeout=300)
        self.assertEqual(p.returncode, 0, p.stderr.decode())
        return p.stdout.decode()


class AblatedLogits(Fixture):
    IDS = [5, 300, 17, 1000, 42, 42, 7, 512, 99, 3, 250, 601, 77, 1022, 0, 128, 64, 900, 33, 11, 300, 17]
    MEAN_IDS = random_ids(60, 1)

    def heads_logits(self, *extra):
        out = self.path("logits.npy")
        self.minigpt("heads", "logits", "-m", self.gguf, "--ids", ids_str(self.IDS), "--all", "-o", out, *extra)
        return np.load(out).astype(np.float64)

    def check(self, spec, heads, mode="zero", mean_ids=None, extra=()):
        mean_z = None
        args = ["--ablate", spec, "--ablate-mode", mode, *extra]
        if mode == "mean":
            ref_ids = mean_ids if mean_ids is not None else self.IDS
            mean_z = reference.mean_head_outputs(self.params, ref_ids, heads)
            if mean_ids is not None:
                args += ["--mean-ids", ids_str(mean_ids)]
        want = reference.forward(self.params, self.IDS, ablate=heads, mean_z=mean_z)
        plain = reference.forward(self.params, self.IDS)
        got = self.heads_logits(*args)
        diff, effect = np.abs(got - want).max(), np.abs(want - plain).max()
        print(f"\n  --ablate {spec} ({mode}{', ' + ' '.join(extra) if extra else ''}): max |minigpt - reference| = "
              f"{diff:.3g} (tolerance {TOL_LOGITS}); the ablation moves logits by up to {effect:.3g}")
        self.assertLessEqual(diff, TOL_LOGITS)
        self.assertGreater(effect, 100 * TOL_LOGITS, "the ablation must change the logits for the test to mean anything")

    def test_one_head(self):
        self.check("1.2", [(1, 2)])

    def test_whole_layer(self):
        self.check("0.*", [(0, h) for h in range(N_HEAD)])

    def test_heads_across_layers_decoded_through_the_cache(self):
        self.check("0.1,1.3,0.1", [(0, 1), (1, 3)], extra=("--mode", "decode"))

    def test_mean_ablation_one_head_over_a_reference_text(self):
        self.check("0.3", [(0, 3)], mode="mean", mean_ids=self.MEAN_IDS)

    def test_mean_ablation_whole_layer_over_the_same_ids(self):
        self.check("1.*", [(1, h) for h in range(N_HEAD)], mode="mean")

    def test_mean_file_goes_through_the_tokenizer(self):
        text = self.path("mean.txt")
        with open(text, "w") as f:
            f.write("The old man looked at the sea, and the sea looked back at the old man.\n")
        ids = self.minigpt("tokenize", "-m", self.gguf, "-f", text).split()
        via_file = self.heads_logits("--ablate", "0.3,1.1", "--ablate-mode", "mean", "--mean-file", text)
        via_ids = self.heads_logits("--ablate", "0.3,1.1", "--ablate-mode", "mean", "--mean-ids", " ".join(ids))
        self.assertEqual(np.abs(via_file - via_ids).max(), 0.0)

    def test_no_ablation_equals_plain_logits(self):
        got = self.heads_logits()
        self.assertLessEqual(np.abs(got - reference.forward(self.params, self.IDS)).max(), TOL_LOGITS)

    def test_bad_arguments_name_the_argument(self):
        for args, message in ((["--ablate", "2.0"], '--ablate: "2.0": the model has 2 layers (0..1)'),
                              (["--ablate", "0.4"], '--ablate: "0.4": the model has 4 heads per layer (0..3)'),
                              (["--ablate", "0.x"], '--ablate: "0.x" is not a head: write L.H or L.*'),
                              (["--ablate", ","], "--ablate: no heads given"),
                              (["--ablate", "0.1", "--ablate-mode", "avg"], "--ablate-mode must be zero or mean"),
                              (["--mean-ids", "1 2"], "--mean-ids needs --ablate with --ablate-mode mean")):
            # Usage errors (exit 2), the same through `logits` and its alias `heads logits`.
            p = run_minigpt(["heads", "logits", "-m", self.gguf, "--ids", "1 2 3", *args], code=2)
            self.assertIn(message, run_minigpt(["logits", "-m", self.gguf, "--ids", "1 2 3", *args], code=2).stderr.decode())
            err = p.stderr.decode()
            self.assertIn(message, err)
            self.assertEqual(len(err.strip().splitlines()), 1, err)


def sample_positions(T, m):
    """The similarity rows: evenly spaced query positions in [1, T-1] (as documented)."""
    avail, out = T - 1, []
    k = min(m, avail)
    for i in range(k):
        pos = 1 + (avail - 1 if k == 1 else i * (avail - 1) // (k - 1))
        if not out or out[-1] != pos:
            out.append(pos)
    return out


def xlogx(p):
    return np.where(p > 0, p * np.log(np.where(p > 0, p, 1)), 0.0)


class HeadStats(Fixture):
    WINDOW, SIM_ROWS, R, SEQS = 64, 16, 20, 2

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # 200 ids from a small range so that tokens repeat (duplicate-token rows).
        cls.ids = random_ids(200, 7, high=60)
        cls.json_path = os.path.join(cls.tmp.name, "stats.json")
        cls.csv_path = os.path.join(cls.tmp.name, "stats.csv")
        cls.svg_path = os.path.join(cls.tmp.name, "stats.svg")
        p = run_minigpt(["heads", "stats", "-m", cls.gguf, "--ids", ids_str(cls.ids), "-c", str(cls.WINDOW),
                         "--sim-rows", str(cls.SIM_ROWS), "--induction-len", str(cls.R), "--induction-seqs",
                         str(cls.SEQS), "--json", cls.json_path, "--csv", cls.csv_path, "--svg", cls.svg_path])
        assert p.returncode == 0, p.stderr.decode()
        cls.stdout = p.stdout.decode()
        with open(cls.json_path) as f:
            cls.report = json.load(f)
        cls.expected = cls.reference_stats()

    @classmethod
    def reference_stats(cls):
        """Every statistic from the float64 reference's attention, computed with numpy."""
        K = N_LAYER * N_HEAD
        acc = {k: np.zeros(K) for k in ("entropy", "distance", "sink", "prev_token", "dup_token", "induction")}
        rows = dup_rows = ind_rows = sim_rows = 0
        jsd = np.zeros((K, K))
        windows = [cls.ids[i:i + cls.WINDOW] for i in range(0, len(cls.ids), cls.WINDOW)]
        for w in windows:
            _, att = reference.forward(cls.params, w, return_attention=True)
            A = np.stack(att).reshape(K, len(w), len(w))  # (K, T, T)
            T = len(w)
            i = np.arange(T)[:, None]
            j = np.arange(T)[None, :]
            q = slice(1, T)  # query rows i >= 1
            acc["entropy"] += -xlogx(A[:, q]).sum(-1).sum(-1)
            acc["distance"] += (A[:, q] * (i - j)[q]).sum(-1).sum(-1)
            acc["sink"] += A[:, q, 0].sum(-1)
            acc["prev_token"] += A[:, np.arange(1, T), np.arange(0, T - 1)].sum(-1)
            rows += T - 1
            tok = np.array(w)
            dup = (tok[:, None] == tok[None, :]) & (j < i)  # TransformerLens duplicate-token pattern
            has = dup.any(-1)
            acc["dup_token"] += (A * dup).sum(-1)[:, has].sum(-1)
            dup_rows += int(has.sum())
            pos = sample_positions(T, cls.SIM_ROWS)
            for p in pos:
                P = A[:, p, :p + 1]  # (K, p+1)
                M = 0.5 * (P[:, None, :] + P[None, :, :])
                jsd += 0.5 * (xlogx(P).sum(-1)[:, None] + xlogx(P).sum(-1)[None, :]) - xlogx(M).sum(-1)
            sim_rows += len(pos)
        for seq in cls.report["induction"]["sequences"]:
            _, att = reference.forward(cls.params, seq, return_attention=True)
            A = np.stack(att).reshape(K, len(seq), len(seq))
            tok = np.array(seq)
            T = len(seq)
            i, j = np.arange(T)[:, None], np.arange(T)[None, :]
            dup = (tok[:, None] == tok[None, :]) & (j < i)
            ind = np.zeros_like(dup)
            ind[:, 1:] = dup[:, :-1]  # TransformerLens induction pattern: the token after each earlier copy
            has = ind.any(-1)
            acc["induction"] += (A * ind).sum(-1)[:, has].sum(-1)
            ind_rows += int(has.sum())
        out = {"entropy": acc["entropy"] / rows, "distance": acc["distance"] / rows, "sink": acc["sink"] / rows,
               "prev_token": acc["prev_token"] / rows, "dup_token": acc["dup_token"] / dup_rows,
               "induction": acc["induction"] / ind_rows, "similarity": np.maximum(jsd, 0) / sim_rows}
        np.fill_diagonal(out["similarity"], 0)
        out["rows"] = {"text": rows, "dup": dup_rows, "induction": ind_rows, "similarity": sim_rows}
        return out

    def test_every_statistic_equals_the_reference(self):
        heads = self.report["heads"]
        self.assertEqual([h["name"] for h in heads], [f"L{l}H{h}" for l in range(N_LAYER) for h in range(N_HEAD)])
        self.assertEqual(self.report["rows"], self.expected["rows"])
        for key in ("entropy", "distance", "sink", "prev_token", "dup_token", "induction"):
            got = np.array([h[key] for h in heads])
            diff = np.abs(got - self.expected[key]).max()
            print(f"\n  {key:10s}: max |minigpt - numpy on float64 attention| = {diff:.3g} (tolerance {TOL_STATS[key]}); "
                  f"range {got.min():.3f}..{got.max():.3f}", end="")
            self.assertLessEqual(diff, TOL_STATS[key], key)
        sim = np.array(self.report["similarity"]["matrix"])
        diff = np.abs(sim - self.expected["similarity"]).max()
        print(f"\n  similarity: max |diff| = {diff:.3g} over {self.expected['rows']['similarity']} rows "
              f"(tolerance {TOL_STATS['similarity']}); range {sim[sim > 0].min():.3f}..{sim.max():.3f} (ln 2 = {np.log(2):.3f})")
        self.assertLessEqual(diff, TOL_STATS["similarity"])

    def test_induction_sequences_are_bos_plus_a_repeat_of_distinct_tokens(self):
        seqs = self.report["induction"]["sequences"]
        self.assertEqual(len(seqs), self.SEQS)
        for s in seqs:
            self.assertEqual(len(s), 2 * self.R + 1)
            self.assertEqual(s[0], 1023)  # <|endoftext|>, the tokenizer's BOS
            self.assertEqual(s[1:self.R + 1], s[self.R + 1:])
            self.assertEqual(len(set(s[1:self.R + 1])), self.R)
            self.assertNotIn(1023, s[1:])

    def test_csv_table_and_svg(self):
        with open(self.csv_path, newline="") as f:
            rows = list(csv.DictReader(f))
        self.assertEqual(len(rows), N_LAYER * N_HEAD)
        worst = 0.0
        for row, head in zip(rows, self.report["heads"]):
            self.assertEqual(row["name"], head["name"])
            for key in ("entropy", "prev_token", "induction"):
                worst = max(worst, abs(float(row[key]) - head[key]) / abs(head[key]))
        print(f"\n  CSV vs JSON: max relative difference {worst:.2g} (tolerance 1e-8: both are printed to more digits)")
        self.assertLessEqual(worst, 1e-8)
        for name in ("L0H0", "L1H3"):
            self.assertIn(name, self.stdout)
        for category in ("previous-token", "induction", "duplicate-token", "sink", "most similar"):
            self.assertIn(category, self.stdout)
        svg = ET.parse(self.svg_path).getroot()
        rects = [r for r in svg.iter("{http://www.w3.org/2000/svg}rect") if r.find("{http://www.w3.org/2000/svg}title") is not None]
        K = N_LAYER * N_HEAD
        self.assertEqual(len(rects), 6 * K + K * K)  # six layer x head maps and the head x head matrix

    def test_help_states_the_definitions(self):
        out = self.minigpt("heads", "stats", "--help")
        for words in ("TransformerLens", "Olsson", "Clark", "Jensen-Shannon", "ln n", "i >= 1"):
            self.assertIn(words, out)

    def test_text_file_through_the_tokenizer(self):
        text = self.path("text.txt")
        with open(text, "w") as f:
            f.write("The old man looked at the sea. The old man looked at the boats, and the sea looked back.\n" * 8)
        out = self.minigpt("heads", "stats", "-m", self.gguf, "-f", text, "-c", "48", "--induction-len", "10")
        self.assertIn("L1H3", out)
        p = run_minigpt(["heads", "stats", "-m", self.gguf], code=2)
        self.assertIn(b"-f/--file FILE or as --ids", p.stderr)
        p = run_minigpt(["heads", "importance", "-m", self.gguf, "-f", text, "-c", "500"], code=2)
        self.assertIn(b"--ctx-size 500 exceeds the model's context length of 128", p.stderr)
        p = run_minigpt(["heads", "frobnicate"], code=2)
        self.assertIn(b'unknown subcommand "frobnicate"', p.stderr)


class HeadImportance(Fixture):
    WINDOW = 40

    def ppl(self, windows, heads=(), mean_z=None):
        nll, count = 0.0, 0
        for w in windows:
            logits = reference.forward(self.params, w, ablate=list(heads), mean_z=mean_z)
            logp = logits - np.log(np.exp(logits - logits.max(-1, keepdims=True)).sum(-1, keepdims=True)) \
                - logits.max(-1, keepdims=True)
            nll -= logp[np.arange(len(w) - 1), w[1:]].sum()
            count += len(w) - 1
        return float(np.exp(nll / count))

    def run_importance(self, ids, *extra):
        csv_path, svg_path = self.path("imp.csv"), self.path("imp.svg")
        out = self.minigpt("heads", "importance", "-m", self.gguf, "--ids", ids_str(ids), "-c", self.WINDOW,
                           "--csv", csv_path, "--svg", svg_path, *extra)
        with open(csv_path, newline="") as f:
            rows = list(csv.DictReader(f))
        return out, rows, svg_path

    def test_perplexities_and_pruning_curve_equal_the_reference(self):
        ids = random_ids(110, 11)
        windows = [ids[i:i + self.WINDOW] for i in range(0, len(ids), self.WINDOW)]  # 40, 40, 30
        out, rows, svg_path = self.run_importance(ids)
        base = self.ppl(windows)
        got_base = float(out.split("baseline perplexity ")[1].split()[0])
        base_rel = abs(got_base - base) / base
        worst = worst_imp = 0.0
        for row in rows:
            head = (int(row["layer"]), int(row["head"]))
            want = self.ppl(windows, [head])
            worst = max(worst, abs(float(row["ablated_ppl"]) - want) / want)
            worst_imp = max(worst_imp, abs(float(row["importance"]) - (float(row["ablated_ppl"]) - base)) / base)
        print(f"\n  importance: baseline PPL {base:.3f} (printed {got_base}: relative error {base_rel:.2g}); max relative "
              f"|minigpt - reference| over the {len(rows)} ablated perplexities = {worst:.3g}, of the importances "
              f"{worst_imp:.3g} (tolerance {TOL_PPL_REL})")
        # The baseline is printed with 4 decimals: half a unit of the last digit, relative.
        self.assertLess(base_rel, 0.5e-4 / base + TOL_PPL_REL)
        self.assertLessEqual(worst, TOL_PPL_REL)
        self.assertLessEqual(worst_imp, TOL_PPL_REL)
        # Pruning order: increasing ablated perplexity; the last step has every head removed.
        order = sorted(rows, key=lambda r: int(r["prune_step"]))
        self.assertEqual([int(r["prune_step"]) for r in order], list(range(1, len(rows) + 1)))
        ablated = [float(r["ablated_ppl"]) for r in order]
        self.assertEqual(ablated, sorted(ablated))
        all_heads = [(l, h) for l in range(N_LAYER) for h in range(N_HEAD)]
        want_all = self.ppl(windows, all_heads)
        got_all = float(order[-1]["ppl_after_prune_step"])
        first_two = [(int(r["layer"]), int(r["head"])) for r in order[:2]]
        rel_all = abs(got_all - want_all) / want_all
        rel_two = abs(float(order[1]["ppl_after_prune_step"]) - self.ppl(windows, first_two)) / base
        print(f"  pruning curve: relative |minigpt - reference| after 2 steps {rel_two:.3g}, after all {rel_all:.3g}")
        self.assertLess(rel_all, TOL_PPL_REL)
        self.assertLess(rel_two, TOL_PPL_REL)
        self.assertIn("pruning curve", out)
        svg = ET.parse(svg_path).getroot()
        self.assertIsNotNone(next(svg.iter("{http://www.w3.org/2000/svg}polyline"), None))

    def test_mean_ablation_uses_the_mean_over_the_text(self):
        ids = random_ids(80, 12)
        windows = [ids[i:i + self.WINDOW] for i in range(0, len(ids), self.WINDOW)]
        _, rows, _ = self.run_importance(ids, "--ablate-mode", "mean", "--no-curve")
        zs = []
        for w in windows:  # the mean z over every position of every window, unablated
            hooks = {}
            reference.run(self.params, w, hooks=hooks)
            zs.append([hooks[f"blocks.{l}.attn.hook_z"] for l in range(N_LAYER)])
        mean_z = {(l, h): np.concatenate([z[l][:, h, :] for z in zs]).mean(axis=0)
                  for l in range(N_LAYER) for h in range(N_HEAD)}
        worst = 0.0
        for row in rows[:3]:
            head = (int(row["layer"]), int(row["head"]))
            want = self.ppl(windows, [head], mean_z)
            worst = max(worst, abs(float(row["ablated_ppl"]) - want) / want)
            self.assertEqual(row["ppl_after_prune_step"], "")
        print(f"\n  mean ablation: max relative |minigpt - reference| over 3 heads = {worst:.3g} (tolerance {TOL_PPL_REL})")
        self.assertLess(worst, TOL_PPL_REL)
        # --mean-file: the means of another text change the result.
        text = self.path("other.txt")
        with open(text, "w") as f:
            f.write("Numbers such as 3.14159, 2718 and 100000 are split into digit groups.\n" * 3)
        _, rows_file, _ = self.run_importance(ids, "--ablate-mode", "mean", "--no-curve", "--mean-file", text)
        self.assertNotEqual([r["ablated_ppl"] for r in rows_file], [r["ablated_ppl"] for r in rows])


if __name__ == "__main__":
    unittest.main()
