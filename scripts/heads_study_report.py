#!/usr/bin/env python3
"""Gather scripts/heads_study.sh's measurements into one table and draw its plots.

Reads, for each head count H, OUT/hH/ (train.py's train_log.csv and hf/final_metrics.json)
and OUT/hH.analysis/ (minigpt's outputs), and writes
  OUT/summary.json, OUT/summary.md     every figure of the table, per model
  DOCS/heads-study.svg                 six panels: training curves, quality, group-kv,
                                       specialised heads, redundancy, speed
  DOCS/heads-study-cost.svg            `minigpt heads cost`'s plots for the family's shape
and copies the small per-model files to --record. numpy only (no matplotlib): the SVG is
written by hand.

Definitions (stated in docs/heads-study.md, fixed before the runs were looked at):
  specialised   a head whose heads-stats score is >= THRESHOLDS[statistic]
  JS similarity 1 - JSD / ln 2 from heads stats' Jensen-Shannon divergence matrix, averaged
                over pairs of heads in the same layer, and over all pairs of heads
  prunable at x %  heads removed along heads importance's pruning curve (least important
                first) before its perplexity first exceeds (1 + x/100) x its baseline
  dispensable   heads whose ablation alone raises heads importance's perplexity by < 1 %
Usage: heads_study_report.py --out DIR --heads "1 2 4 8 16" [--record DIR] [--docs DIR]
"""
import argparse
import csv
import html
import json
import math
import os
import re
import shutil
import statistics

import numpy as np

THRESHOLDS = {"prev_token": 0.3, "induction": 0.3, "dup_token": 0.3, "sink": 0.5}
KV = (1, 2, 4)
COPY = ["ppl.json", "stats.json", "stats.csv", "stats.txt", "importance.csv",
        "importance.txt", "importance.svg", "profile.txt"]


def read_json(path):
    with open(path) as f:
        return json.load(f)


def bench_rows(path):
    """{test: (median, min, max) tok/s of minigpt} from a `minigpt bench` report (its first table)."""
    out = {}
    with open(path) as f:
        for line in f:
            cells = [c.strip() for c in line.split("|")]
            if len(cells) > 6 and re.fullmatch(r"(pp|tg)\d+", cells[3]) and cells[5]:
                lo, hi = (float(v) for v in cells[6].split("\u2013"))
                out.setdefault(cells[3], (float(cells[5]), lo, hi))
    return out


def pruning(imp_csv, baseline):
    rows = sorted((int(r["prune_step"]), float(r["ppl_after_prune_step"]), float(r["importance"]))
                  for r in csv.DictReader(open(imp_csv)))
    res = {}
    for pct in (1, 5):
        limit = baseline * (1 + pct / 100)
        k = next((s - 1 for s, p, _ in rows if p > limit), len(rows))
        res[f"prunable_{pct}pct"] = k
    res["dispensable_alone"] = sum(1 for _, _, imp in rows if imp < 0.01 * baseline)
    res["max_importance_pct"] = 100 * max(imp for _, _, imp in rows) / baseline
    res["curve"] = [[s, p] for s, p, _ in rows]
    res["all_heads_off_pct"] = 100 * (rows[-1][1] / baseline - 1)  # every head ablated at once
    return res


def js_similarity(stats):
    L, H = stats["n_layer"], stats["n_head"]
    jsd = np.array(stats["similarity"]["matrix"], dtype=float)
    sim = 1.0 - jsd / math.log(2.0)
    n = L * H
    iu = np.triu_indices(n, 1)
    within = [sim[l * H + a, l * H + b] for l in range(L) for a in range(H) for b in range(a + 1, H)]
    return {"js_sim_within_layer": float(np.mean(within)) if within else None,
            "js_sim_all_pairs": float(sim[iu].mean()),
            "jsd_within_layer_nats": float(np.mean([jsd[l * H + a, l * H + b] for l in range(L)
                                                    for a in range(H) for b in range(a + 1, H)]))
            if within else None}


def model_summary(out, H):
    a = os.path.join(out, f"h{H}.analysis")
    fm = read_json(os.path.join(out, f"h{H}", "hf", "final_metrics.json"))
    stats = read_json(os.path.join(a, "stats.json"))
    heads = stats["heads"]
    s = {"heads": H, "head_size": fm["shape"]["n_embd"] // H, "ctx": fm["shape"]["n_ctx"], "parameters": fm["parameters"],
         "steps": fm["steps"], "training_minutes": fm["training_seconds"] / 60,
         "val_ppl_train_py": fm["validation_perplexity"],
         "val_ppl": read_json(os.path.join(a, "ppl.json"))["ppl"], "n_heads_total": len(heads)}
    for k, t in THRESHOLDS.items():
        s[f"n_{k}"] = sum(1 for h in heads if h[k] >= t)
        best = max(heads, key=lambda h: h[k])
        s[f"max_{k}"] = best[k]
        s[f"best_{k}"] = best["name"]
    imp = sorted(csv.DictReader(open(os.path.join(a, "importance.csv"))), key=lambda r: -float(r["importance"]))
    s["most_important"] = imp[0]["name"]
    s["mean_entropy"] = float(np.mean([h["entropy"] for h in heads]))
    s["min_entropy"] = float(min(h["entropy"] for h in heads))
    s["mean_distance"] = float(np.mean([h["distance"] for h in heads]))
    s.update(js_similarity(stats))
    txt = open(os.path.join(a, "importance.txt")).read()
    base = float(re.search(r"baseline perplexity ([0-9.]+)", txt).group(1))
    s["importance_baseline_ppl"] = base
    s.update(pruning(os.path.join(a, "importance.csv"), base))
    for G in KV:
        p = os.path.join(a, f"ppl-kv{G}.json")
        s[f"ppl_kv{G}"] = read_json(p)["ppl"] if os.path.exists(p) else None
    for kind in ("pp", "tg"):  # median of the rounds' medians; range over every timed run
        rounds = []
        for name in sorted(os.listdir(a)):
            if name.startswith("bench-") and name.endswith(".txt"):
                rounds += [v for t, v in bench_rows(os.path.join(a, name)).items() if t.startswith(kind)]
        s[f"{kind}_tok_s"] = statistics.median(r[0] for r in rounds) if rounds else None
        s[f"{kind}_tok_s_range"] = [min(r[1] for r in rounds), max(r[2] for r in rounds)] if rounds else None
        s[f"{kind}_rounds"] = len(rounds)
    prof = os.path.join(a, "profile.txt")
    if os.path.exists(prof):
        m = re.search(r"^attention\s+[0-9.]+\s+([0-9.]+) %", open(prof).read(), re.M)
        s["attention_share_pct"] = float(m.group(1)) if m else None
    curve = list(csv.DictReader(open(os.path.join(out, f"h{H}", "train_log.csv"))))
    s["val_curve"] = [[int(r["step"]), float(r["val_loss"])] for r in curve if r["val_loss"]]
    return s


def fmt(v, nd=2):
    return "—" if v is None else f"{v:.{nd}f}"


def table(rows):
    lines = ["| heads (head size) | val PPL | G=4 | G=2 | G=1 (MQA) | prev ≥ 0.3 | induction ≥ 0.3 "
             "(best) | dup ≥ 0.3 | sink ≥ 0.5 | JS sim. in layer / all | dispensable alone | "
             "prunable 1 % / 5 % | all heads off | pp tok/s | tg tok/s |",
             "|" + "---|" * 15]
    for s in rows:
        n = s["n_heads_total"]
        lines.append(
            f"| {s['heads']} ({s['head_size']}) | {s['val_ppl']:.2f} | {fmt(s['ppl_kv4'])} | "
            f"{fmt(s['ppl_kv2'])} | {fmt(s['ppl_kv1'])} | {s['n_prev_token']}/{n} | "
            f"{s['n_induction']}/{n} ({s['max_induction']:.2f} {s['best_induction']}) | "
            f"{s['n_dup_token']}/{n} | {s['n_sink']}/{n} | "
            f"{fmt(s['js_sim_within_layer'], 3)} / {s['js_sim_all_pairs']:.3f} | "
            f"{s['dispensable_alone']}/{n} | {s['prunable_1pct']} / {s['prunable_5pct']} of {n} | "
            f"+{s['all_heads_off_pct']:.1f} % | "
            f"{fmt(s['pp_tok_s'], 0)} | {fmt(s['tg_tok_s'], 0)} |")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- SVG by hand

COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"]


class Panel:
    def __init__(self, x, y, w, h, title, xlabel, ylabel, xs, ys_all, logx=False, xticks=None, ylim=None):
        self.x, self.y, self.w, self.h = x + 60, y + 30, w - 200, h - 75
        self.logx = logx
        xv = [self.tx(v) for v in xs]
        self.x0, self.x1 = min(xv), max(xv)
        if self.x0 == self.x1:
            self.x1 = self.x0 + 1
        ys = [v for v in ys_all if v is not None] or [0.0, 1.0]
        lo, hi = min(ys), max(ys)
        pad = (hi - lo) * 0.08 or abs(hi) * 0.1 or 1
        self.y0, self.y1 = ylim or (lo - pad, hi + pad)
        self.parts = [f'<text x="{x + w / 2}" y="{y + 18}" text-anchor="middle" font-weight="bold">{title}</text>',
                      f'<rect x="{self.x}" y="{self.y}" width="{self.w}" height="{self.h}" fill="none" stroke="#999"/>',
                      f'<text x="{self.x + self.w / 2}" y="{self.y + self.h + 34}" text-anchor="middle">{xlabel}</text>',
                      f'<text transform="translate({x + 14},{self.y + self.h / 2}) rotate(-90)" '
                      f'text-anchor="middle">{ylabel}</text>']
        for t in (xticks or xs):
            if not self.x0 <= self.tx(t) <= self.x1:
                continue
            px = self.px(t)
            self.parts.append(f'<line x1="{px}" y1="{self.y + self.h}" x2="{px}" y2="{self.y + self.h + 4}" stroke="#999"/>'
                              f'<text x="{px}" y="{self.y + self.h + 17}" text-anchor="middle" font-size="11">{t:g}</text>')
        for t in np.linspace(self.y0, self.y1, 5)[1:-1]:
            py = self.py(t)
            self.parts.append(f'<line x1="{self.x}" y1="{py}" x2="{self.x + self.w}" y2="{py}" stroke="#eee"/>'
                              f'<text x="{self.x - 4}" y="{py + 4}" text-anchor="end" font-size="11">{t:.3g}</text>')
        self.legend_n = 0

    def tx(self, v):
        return math.log2(v) if self.logx else v

    def px(self, v):
        return self.x + (self.tx(v) - self.x0) / (self.x1 - self.x0) * self.w

    def py(self, v):
        return self.y + self.h - (v - self.y0) / (self.y1 - self.y0) * self.h

    def line(self, xs, ys, label, color, dash=False):
        pts = [(self.px(a), self.py(b)) for a, b in zip(xs, ys) if b is not None]
        d = ' stroke-dasharray="5,3"' if dash else ""
        if len(pts) > 1:
            self.parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="2"{d} points="'
                              + " ".join(f"{a:.1f},{b:.1f}" for a, b in pts) + '"/>')
        if len(pts) < 40:
            self.parts += [f'<circle cx="{a:.1f}" cy="{b:.1f}" r="3" fill="{color}"/>' for a, b in pts]
        ly = self.y + 14 + 15 * self.legend_n
        self.legend_n += 1
        self.parts.append(f'<line x1="{self.x + self.w + 8}" y1="{ly - 4}" x2="{self.x + self.w + 26}" '
                          f'y2="{ly - 4}" stroke="{color}" stroke-width="2"{d}/>'
                          f'<text x="{self.x + self.w + 30}" y="{ly}" font-size="11">{html.escape(label)}</text>')

    def svg(self):
        return "\n".join(self.parts)


def plots(rows, path, extras=()):
    W, Hh = 460, 330
    hs = [s["heads"] for s in rows]
    panels = []
    # 1. training curves
    allv = [v for s in rows for _, v in s["val_curve"]]
    steps = [st for s in rows for st, _ in s["val_curve"]]
    p = Panel(0, 0, W, Hh, "validation loss during training (40 chunks)", "step", "nats/token",
              steps, allv, xticks=sorted(set(range(0, max(steps) + 1, 100))))
    for i, s in enumerate(rows):
        p.line([a for a, _ in s["val_curve"]], [b for _, b in s["val_curve"]], f"{s['heads']} heads", COLORS[i % 6])
    panels.append(p)
    # 2. quality and group-kv
    ys = ([s["val_ppl"] for s in rows] + [s[f"ppl_kv{G}"] for s in rows for G in KV]
          + [e["val_ppl"] for _, ex in extras for e in ex])
    p = Panel(W, 0, W, Hh, "validation perplexity (full split)", "query heads", "perplexity", hs, ys, logx=True)
    p.line(hs, [s["val_ppl"] for s in rows], "all kv heads", COLORS[0])
    for i, G in enumerate(KV):
        p.line(hs, [s[f"ppl_kv{G}"] for s in rows], f"group-kv G={G}", COLORS[i + 1], dash=True)
    for i, (label, ex) in enumerate(extras):
        p.line([e["heads"] for e in ex], [e["val_ppl"] for e in ex], label, COLORS[4 + i])
    panels.append(p)
    # 3. specialised heads: best score per statistic
    keys = [("prev_token", "previous-token"), ("induction", "induction"), ("dup_token", "duplicate"), ("sink", "sink")]
    ys = [s[f"max_{k}"] for s in rows for k, _ in keys]
    p = Panel(2 * W, 0, W, Hh, "best head's score (heads stats)", "heads per layer", "score", hs, ys + [0], logx=True)
    for i, (k, name) in enumerate(keys):
        p.line(hs, [s[f"max_{k}"] for s in rows], name, COLORS[i])
    panels.append(p)
    # 4. how sharp the heads are: mean and lowest attention entropy against a uniform head's
    unif = float(np.mean([math.log(i + 1) for i in range(1, rows[0]["ctx"])]))
    ys = [s["mean_entropy"] for s in rows] + [s["min_entropy"] for s in rows] + [unif, 0]
    p = Panel(0, Hh, W, Hh, "attention entropy (heads stats)", "heads per layer", "nats", hs, ys, logx=True)
    p.line(hs, [s["mean_entropy"] for s in rows], "mean over heads", COLORS[0])
    p.line(hs, [s["min_entropy"] for s in rows], "sharpest head", COLORS[1])
    p.line(hs, [unif] * len(hs), "uniform attention", "#777", dash=True)
    panels.append(p)
    # 5. redundancy
    ys = ([s["prunable_1pct"] / s["n_heads_total"] for s in rows] + [s["prunable_5pct"] / s["n_heads_total"] for s in rows]
          + [s["js_sim_all_pairs"] for s in rows] + [s["dispensable_alone"] / s["n_heads_total"] for s in rows] + [0])
    p = Panel(W, Hh, W, Hh, "redundancy", "heads per layer", "share of heads / similarity", hs, ys, logx=True,
              ylim=(-0.05, 1.05))
    p.line(hs, [s["prunable_1pct"] / s["n_heads_total"] for s in rows], "prunable, PPL +1 %", COLORS[0])
    p.line(hs, [s["prunable_5pct"] / s["n_heads_total"] for s in rows], "prunable, PPL +5 %", COLORS[1])
    p.line(hs, [s["dispensable_alone"] / s["n_heads_total"] for s in rows], "alone < +1 %", COLORS[2])
    p.line(hs, [s["js_sim_all_pairs"] for s in rows], "JS similarity", COLORS[3], dash=True)
    panels.append(p)
    # 6. speed
    k = lambda v: None if v is None else v / 1e3  # noqa: E731 (runs without the speed stage have none)
    ys = [k(s["pp_tok_s"]) for s in rows] + [k(s["tg_tok_s"]) for s in rows] + [0]
    p = Panel(2 * W, Hh, W, Hh, "minigpt speed, 1 thread (medians)", "heads per layer", "thousand tokens/s", hs, ys,
              logx=True)
    p.line(hs, [k(s["pp_tok_s"]) for s in rows], "prefill pp128", COLORS[0])
    p.line(hs, [k(s["tg_tok_s"]) for s in rows], "decode tg128", COLORS[1])
    panels.append(p)
    body = "\n".join(q.svg() for q in panels)
    svg = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{3 * W}" height="{2 * Hh}" '
           f'font-family="sans-serif" font-size="12">\n<rect width="100%" height="100%" fill="white"/>\n{body}\n</svg>\n')
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(svg)
    os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--heads", default="1 2 4 8 16")
    ap.add_argument("--record", default=None)
    ap.add_argument("--docs", default=None, help="folder for heads-study.svg (default: --out)")
    ap.add_argument("--extra", action="append", default=[], metavar="LABEL=DIR",
                    help="another run of the script (--out DIR, e.g. another seed) whose validation "
                         "perplexities are drawn beside the family's")
    args = ap.parse_args()
    rows = [model_summary(args.out, int(h)) for h in args.heads.split()]
    md = table(rows)
    with open(os.path.join(args.out, "summary.json"), "w") as f:
        json.dump(rows, f, indent=1)
        f.write("\n")
    with open(os.path.join(args.out, "summary.md"), "w") as f:
        f.write(md)
    print(md)
    extras = []
    for spec in args.extra:
        label, _, d = spec.partition("=")
        hs = sorted(int(n[1:-5]) for n in os.listdir(d) if re.fullmatch(r"h\d+\.gguf", n))
        extras.append((label, [{"heads": h, "val_ppl": read_json(os.path.join(d, f"h{h}.analysis", "ppl.json"))["ppl"]}
                               for h in hs if os.path.exists(os.path.join(d, f"h{h}.analysis", "ppl.json"))]))
    plots(rows, os.path.join(args.docs or args.out, "heads-study.svg"), extras)
    cost = os.path.join(args.out, "cost.svg")
    if os.path.exists(cost):  # heads cost's plots for the family's shape, as minigpt drew them
        shutil.copyfile(cost, os.path.join(args.docs or args.out, "heads-study-cost.svg"))
    if args.record:
        for name in ("cost.csv", "cost.txt"):
            if os.path.exists(os.path.join(args.out, name)):
                shutil.copyfile(os.path.join(args.out, name), os.path.join(args.record, name))
        shutil.copyfile(os.path.join(args.out, "summary.json"), os.path.join(args.record, "summary.json"))
        shutil.copyfile(os.path.join(args.out, "summary.md"), os.path.join(args.record, "summary.md"))
        for s in rows:
            a = os.path.join(args.out, f"h{s['heads']}.analysis")
            dst = os.path.join(args.record, f"h{s['heads']}")
            os.makedirs(dst, exist_ok=True)
            for name in sorted(os.listdir(a)):
                if name in COPY or re.fullmatch(r"(ppl-kv\d+\.json|group-kv\d+\.txt|bench-.*\.txt)", name):
                    shutil.copyfile(os.path.join(a, name), os.path.join(dst, name))


if __name__ == "__main__":
    main()
