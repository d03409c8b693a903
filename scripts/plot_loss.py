#!/usr/bin/env python3
"""Draw the bundled model's loss curve from train.py's CSV log.

Plots the running train loss (mean over each logging interval) and the
periodic validation loss (a fixed subset of the validation split, see
train.py) against training tokens, in nats per token, with the final
full-split validation loss from final_metrics.json as a horizontal line when
that file exists.

Usage: plot_loss.py [--log model/train_out/train_log.csv]
                    [--metrics model/train_out/hf/final_metrics.json]
                    [--out model/loss.png]
"""
import argparse
import csv
import json
import os

import matplotlib
matplotlib.use("Agg")   # no display on the build machine
import matplotlib.pyplot as plt  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def read_log(path):
    steps, tokens, train, val_tokens, val = [], [], [], [], []
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            steps.append(int(row["step"]))
            tokens.append(int(row["tokens"]))
            train.append(float(row["train_loss"]))
            if row["val_loss"]:
                val_tokens.append(int(row["tokens"]))
                val.append(float(row["val_loss"]))
    if not steps:
        raise SystemExit(f"{path}: no rows yet")
    return steps, tokens, train, val_tokens, val


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--log", default=os.path.join(ROOT, "model", "train_out", "train_log.csv"))
    ap.add_argument("--metrics",
                    default=os.path.join(ROOT, "model", "train_out", "hf", "final_metrics.json"))
    ap.add_argument("--out", default=os.path.join(ROOT, "model", "loss.png"))
    args = ap.parse_args(argv)

    steps, tokens, train, val_tokens, val = read_log(args.log)
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=120)
    millions = [t / 1e6 for t in tokens]
    ax.plot(millions, train, lw=1, alpha=0.8, label="train (running mean per log interval)")
    ax.plot([t / 1e6 for t in val_tokens], val, "o-", ms=3, label="validation (fixed subset)")
    if os.path.exists(args.metrics):
        with open(args.metrics) as f:
            m = json.load(f)
        ax.axhline(m["validation_loss"], color="k", ls="--", lw=0.8,
                   label=f"final validation, full split: {m['validation_loss']:.3f} "
                         f"(ppl {m['validation_perplexity']:.1f})")
    ax.set_xlabel("training tokens (millions)")
    ax.set_ylabel("cross-entropy (nats / token)")
    ax.set_ylim(min(train + val) - 0.2, min(max(train), 8.5) + 0.1)
    top = ax.secondary_xaxis("top", functions=(lambda x: x * 1e6 / (tokens[-1] / steps[-1]),
                                               lambda s: s * (tokens[-1] / steps[-1]) / 1e6))
    top.set_xlabel("step")
    ax.set_title("minigpt-brown: GPT-2 on the Brown corpus")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    from atomic_file import atomic_open  # the picture appears whole or not at all
    with atomic_open(args.out) as f:
        fig.savefig(f, format=os.path.splitext(args.out)[1][1:] or "png")
    print(args.out)


if __name__ == "__main__":
    main()
