#!/usr/bin/env python3
"""Gradient head importance by PyTorch autograd in float64: the reference that
`minigpt heads grad` (a backward pass written in C++) is tested against.

A mask xi (n_layer, n_head), all ones, multiplies every head's z (its
attention-weighted values, before the output projection). For one window of
fed token ids whose positions first_scored.. predict `targets`,
  L = mean NLL of the targets (torch cross_entropy),  g = dL/dxi  (autograd).
Over windows: grad = mean_w g_w, importance = mean_w |g_w| (Michel et al. 2019).

The model is GPT-2 as scripts/reference.py computes it (pre-LayerNorm blocks,
tanh GELU, causal softmax, tied or separate LM head), written again here with
torch tensors so that autograd differentiates it; weights come from the GGUF
through reference.load_gguf (scripts/gguf.py; f16 and q8_0 dequantized exactly)
and are widened to float64.

  torch_head_gradient.py MODEL.gguf --ids "1 2 3 4"     # one window, every prediction scored
prints CSV head,grad,importance (heads L{l}H{h}) and the loss on stderr.
Importable: head_gradients(params, windows) with windows = [(fed_ids, first_scored, targets)].
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reference  # noqa: E402


def _torch():
    import torch  # python3-torch from Debian; imported here so that --help works without it
    return torch


def _tensors(params):
    torch = _torch()
    t = {k: torch.from_numpy(np.asarray(v, dtype=np.float64)) for k, v in params.items()
         if k not in ("config", "layers")}
    t["layers"] = [{k: torch.from_numpy(np.asarray(v, dtype=np.float64)) for k, v in p.items()}
                   for p in params["layers"]]
    return t


def window_loss(params, w, ids, first_scored, targets, xi):
    """L = mean NLL of targets predicted at positions first_scored.. of ids, with
    every head's z multiplied by xi[layer, head]; w: _tensors(params)."""
    torch = _torch()
    F = torch.nn.functional
    c = params["config"]
    T, H, D, E = len(ids), c.n_head, c.head_dim, c.n_embd
    G = getattr(c, "n_head_kv", H)  # key/value heads (grouped-query attention when fewer)
    ids_t = torch.tensor(ids, dtype=torch.long)
    x = w["wte"][ids_t] + w["wpe"][:T]

    def ln(v, weight, bias):
        return F.layer_norm(v, (E,), weight, bias, c.eps)

    mask = torch.tril(torch.ones(T, T, dtype=torch.bool))
    for li, p in enumerate(w["layers"]):
        qkv = ln(x, p["ln_1.weight"], p["ln_1.bias"]) @ p["attn.c_attn.weight"] + p["attn.c_attn.bias"]
        q = qkv[:, :H * D].reshape(T, H, D).transpose(0, 1)                      # (H, T, D)
        k, v = (m.reshape(T, G, D).transpose(0, 1).repeat_interleave(H // G, dim=0)
                for m in qkv[:, H * D:].split(G * D, dim=1))                     # (H, T, D)
        s = (q @ k.transpose(1, 2)) / np.sqrt(D)
        s = s.masked_fill(~mask, float("-inf"))
        z = torch.softmax(s, dim=-1) @ v                                         # (H, T, D)
        z = z * xi[li].reshape(H, 1, 1)
        x = x + z.transpose(0, 1).reshape(T, E) @ p["attn.c_proj.weight"] + p["attn.c_proj.bias"]
        m = ln(x, p["ln_2.weight"], p["ln_2.bias"]) @ p["mlp.c_fc.weight"] + p["mlp.c_fc.bias"]
        x = x + F.gelu(m, approximate="tanh") @ p["mlp.c_proj.weight"] + p["mlp.c_proj.bias"]
    h = ln(x[first_scored:], w["ln_f.weight"], w["ln_f.bias"])
    logits = h @ w["lm_head"].T
    return F.cross_entropy(logits, torch.tensor(targets, dtype=torch.long))


def head_gradients(params, windows):
    """windows: [(fed_ids, first_scored, targets)]. Returns (grad, importance, losses):
    grad and importance (n_layer, n_head) float64 arrays, losses one per window."""
    torch = _torch()
    c = params["config"]
    w = _tensors(params)
    grads, losses = [], []
    for ids, first, targets in windows:
        if len(targets) != len(ids) - first:
            raise ValueError(f"{len(targets)} targets for positions {first}..{len(ids) - 1}")
        xi = torch.ones(c.n_layer, c.n_head, dtype=torch.float64, requires_grad=True)
        loss = window_loss(params, w, ids, first, targets, xi)
        (g,) = torch.autograd.grad(loss, xi)
        grads.append(g.numpy().copy())
        losses.append(float(loss))
    grads = np.stack(grads)
    return grads.mean(axis=0), np.abs(grads).mean(axis=0), losses


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", help="GGUF file (or a Hugging Face GPT-2 folder)")
    ap.add_argument("--ids", required=True, help='token ids "1 2 3": one window, every next-token prediction scored')
    args = ap.parse_args(argv)
    ids = reference.parse_ids(args.ids)
    if len(ids) < 2:
        ap.error("--ids: need at least 2 ids")
    params = reference.load(args.model)
    grad, imp, losses = head_gradients(params, [(ids[:-1], 0, ids[1:])])
    print(f"loss {losses[0]:.9g}", file=sys.stderr)
    print("head,grad,importance")
    for layer in range(grad.shape[0]):
        for head in range(grad.shape[1]):
            print(f"L{layer}H{head},{grad[layer, head]:.12g},{imp[layer, head]:.12g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
