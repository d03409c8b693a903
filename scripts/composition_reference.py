#!/usr/bin/env python3
"""Float64 numpy composition scores and OV copying scores of a GPT-2, straight
from the definitions on full d_model x d_model matrices (no low-rank shortcut):
the reference `minigpt heads circuits` is tested against.

Weights (scripts/reference.py's loader: a GGUF or a Hugging Face folder, widened
to float64) are processed as TransformerLens's HookedTransformer.from_pretrained
does by default, unless --no-center:

  fold_ln               W_Q, W_K, W_V of layer l = rows scaled by ln_1.weight of layer l;
                        W_U = lm_head^T with rows scaled by ln_f.weight
                        (fold_layer_norm's center_weights: each column of W_Q, W_K,
                        W_V, W_U minus its mean over d_model)
  center_writing_weights  each row of W_O and W_E minus its mean over d_model
  center_unembed        W_U minus its mean over the vocabulary (each row)

Per head (row vectors): OV = W_V W_O, QK = W_Q W_K^T (d x d); key/value heads
are repeated to the query heads that read them. For a source head s in an
earlier layer than a destination head t (TransformerLens all_composition_scores):

  q = |OV_s QK_t|_F / (|OV_s|_F |QK_t|_F)      k = |OV_s QK_t^T|_F / (|OV_s|_F |QK_t|_F)
  v = |OV_s OV_t|_F / (|OV_s|_F |OV_t|_F)      (0 where a denominator is 0)

and per head copy = sum(lambda) / sum(|lambda|) over the eigenvalues of the
|S| x |S| matrix W_E[S] OV W_U[:, S] (Olsson et al. 2022), S = token_sample().

  composition_reference.py MODEL [--copy-tokens N] [--no-center] [--csv OUT.csv]

writes the same CSV as `minigpt heads circuits --csv` (kind,from,to,score).
Importable: processed_weights(params, center) -> dict, scores(w, tokens) -> dict.
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reference  # noqa: E402
from atomic_file import atomic_open  # noqa: E402


def token_sample(n_vocab, n):
    """n ids spread evenly over the vocabulary, floor(i * n_vocab / n); every id for 0 or n >= n_vocab."""
    if n <= 0 or n >= n_vocab:
        return np.arange(n_vocab)
    return np.array([i * n_vocab // n for i in range(n)])


def processed_weights(params, center=True):
    """{"W_Q","W_K","W_V": (L, H, d, dh), "W_O": (L, H, dh, d), "W_E": (V, d), "W_U": (d, V)}."""
    c = params["config"]
    L, H, d = c.n_layer, c.n_head, c.n_embd
    dh = d // H
    WQ, WK, WV = np.zeros((L, H, d, dh)), np.zeros((L, H, d, dh)), np.zeros((L, H, d, dh))
    WO = np.zeros((L, H, dh, d))
    for l, p in enumerate(params["layers"]):
        attn = p["attn.c_attn.weight"] * p["ln_1.weight"][:, None]          # (d, d + 2 d_kv): fold_ln
        n_kv = (attn.shape[1] - d) // 2 // dh
        for h in range(H):
            g = h // (H // n_kv)                                             # the key/value head h reads
            WQ[l, h] = attn[:, h * dh:(h + 1) * dh]
            WK[l, h] = attn[:, d + g * dh:d + (g + 1) * dh]
            WV[l, h] = attn[:, d + n_kv * dh + g * dh:d + n_kv * dh + (g + 1) * dh]
            WO[l, h] = p["attn.c_proj.weight"][h * dh:(h + 1) * dh, :]
    WE = params["wte"].copy()
    WU = params["lm_head"].T * params["ln_f.weight"][:, None]
    if center:
        for W in (WQ, WK, WV):
            W -= W.mean(axis=2, keepdims=True)                               # over d_model
        WO -= WO.mean(axis=3, keepdims=True)
        WE -= WE.mean(axis=1, keepdims=True)
        WU -= WU.mean(axis=0, keepdims=True)
        WU -= WU.mean(axis=1, keepdims=True)                                 # center_unembed
    return {"W_Q": WQ, "W_K": WK, "W_V": WV, "W_O": WO, "W_E": WE, "W_U": WU}


def scores(w, tokens):
    """{"q","k","v": (N, N) with N = L*H heads (source row, destination column), "copy": (N,)}."""
    L, H = w["W_Q"].shape[:2]
    N = L * H
    heads = [(l, h) for l in range(L) for h in range(H)]
    OV = [w["W_V"][l, h] @ w["W_O"][l, h] for l, h in heads]
    QK = [w["W_Q"][l, h] @ w["W_K"][l, h].T for l, h in heads]
    fro = np.linalg.norm
    out = {k: np.zeros((N, N)) for k in "qkv"}
    for s in range(N):
        for t in range(N):
            if heads[s][0] >= heads[t][0]:
                continue
            for kind, right, den in (("q", QK[t], fro(QK[t])), ("k", QK[t].T, fro(QK[t])), ("v", OV[t], fro(OV[t]))):
                den = fro(OV[s]) * den
                out[kind][s, t] = fro(OV[s] @ right) / den if den > 0 else 0.0
    E, U = w["W_E"][tokens], w["W_U"][:, tokens]
    out["copy"] = np.zeros(N)
    for i in range(N):
        lam = np.linalg.eigvals(E @ OV[i] @ U)
        a = np.abs(lam).sum()
        out["copy"][i] = lam.sum().real / a if a > 0 else 0.0
    return out


def to_csv(sc, n_head):
    def name(i):
        return f"L{i // n_head}H{i % n_head}"
    N = len(sc["copy"])
    lines = ["kind,from,to,score"]
    for kind in "qkv":
        for s in range(N):
            for t in range(N):
                if s // n_head < t // n_head:
                    lines.append(f"{kind},{name(s)},{name(t)},{sc[kind][s, t]:.17g}")
    lines += [f"copy,{name(i)},,{sc['copy'][i]:.17g}" for i in range(N)]
    return "\n".join(lines) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", help="GGUF file or Hugging Face GPT-2 folder")
    ap.add_argument("--copy-tokens", type=int, default=0, help="|S|: 0 = the whole vocabulary (default)")
    ap.add_argument("--no-center", action="store_true", help="fold the LayerNorm weights, centre nothing")
    ap.add_argument("--csv", help="write kind,from,to,score here (default: standard output)")
    args = ap.parse_args(argv)
    try:
        params = reference.load(args.model)
        w = processed_weights(params, center=not args.no_center)
        sc = scores(w, token_sample(w["W_E"].shape[0], args.copy_tokens))
        text = to_csv(sc, params["config"].n_head)
        if args.csv:
            with atomic_open(args.csv, "w") as f:
                f.write(text)
        else:
            sys.stdout.write(text)
    except (reference.CheckpointError, reference.GGUFError, ValueError, OSError) as e:
        print(f"composition_reference.py: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
