#!/usr/bin/env python3
"""Float64 numpy forward pass of GPT-2, read straight from a Hugging Face folder.

This is the numerical reference the C++ runtime is tested against: it reads
config.json and model.safetensors / pytorch_model.bin (not the GGUF), widens
every weight to float64 and computes, for token ids x[0..T):

  h0   = wte[x] + wpe[0..T)
  per layer l:
    a  = LayerNorm(h; ln_1)                   (biased variance, eps from config)
    q, k, v = split(a @ c_attn.W + c_attn.b)  (n_head heads of head_dim)
    s  = q k^T / sqrt(head_dim), causal mask, softmax with the max subtracted
    z  = s v                                  (hook_z: n_head x T x head_dim)
    h  = h + concat(z) @ c_proj.W + c_proj.b
    m  = LayerNorm(h; ln_2)
    h  = h + gelu_tanh(m @ c_fc.W + c_fc.b) @ mlp.c_proj.W + mlp.c_proj.b
  logits = LayerNorm(h; ln_f) @ lm_head^T     (lm_head = wte unless untied)
  gelu_tanh(x) = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))   ("gelu_new")

Head ablation follows Hugging Face's head_mask: head L.H's z is zeroed (or, with
--ablate-mode mean, replaced at every position by its mean over the positions of
an unablated run on --mean-ids, default the --ids themselves) before the output
projection.

A GGUF file can stand in for the folder (load_gguf, or a .gguf path on the
command line): its weights (f32, f16 or q8_0, dequantized exactly) are widened to
float64 and laid out as Hugging Face's, so the same forward pass checks models
that ship only as GGUF, such as the bundled one.

Importable: load_hf(dir) -> params, load_gguf(path) -> params,
forward(params, ids, ...) -> logits.
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hf_checkpoint import CheckpointError, load_gpt2  # noqa: E402
from gguf import GGUFError  # noqa: E402
from atomic_file import atomic_open  # noqa: E402


def load_hf(hf_dir, source="auto"):
    """Returns params: {"config": GPT2Config, "wte": (V, E), "wpe": (N, E),
    "layers": [dict of float64 arrays per layer], "ln_f.weight", "ln_f.bias",
    "lm_head": (V, E)} with HF's Conv1D weights kept as (in, out)."""
    config, state, _ = load_gpt2(hf_dir, source)
    f64 = {k: np.asarray(v, dtype=np.float64) for k, v in state.items()}
    layers = []
    for i in range(config.n_layer):
        p = f"h.{i}."
        layers.append({k[len(p):]: v for k, v in f64.items() if k.startswith(p)})
    return {
        "config": config, "wte": f64["wte.weight"], "wpe": f64["wpe.weight"], "layers": layers,
        "ln_f.weight": f64["ln_f.weight"], "ln_f.bias": f64["ln_f.bias"],
        "lm_head": f64.get("lm_head.weight", f64["wte.weight"]),
    }


class GGUFConfig:
    """The hyperparameters forward() reads, from a GGUF's gpt2.* keys."""

    def __init__(self, reader, vocab_size):
        def need(key):
            v = reader.value(key)
            if v is None:
                raise ValueError(f"{reader.path}: missing metadata {key}")
            return v
        self.n_layer = int(need("gpt2.block_count"))
        self.n_head = int(need("gpt2.attention.head_count"))
        self.n_embd = int(need("gpt2.embedding_length"))
        self.n_ctx = int(need("gpt2.context_length"))
        self.eps = float(reader.value("gpt2.attention.layer_norm_epsilon", 1e-5))
        self.head_dim = self.n_embd // self.n_head
        self.vocab_size = vocab_size
        self.scale_attn_weights = True
        self.scale_attn_by_inverse_layer_idx = False


def load_gguf(path):
    """Same params as load_hf, read from a GGUF written with llama.cpp's names
    (matrices stored (out, in) there, transposed back to Conv1D's (in, out))."""
    from gguf import GGUFReader  # scripts/gguf.py
    r = GGUFReader(path)

    def t(name):
        if name not in r.tensors:
            raise ValueError(f"{path}: missing tensor {name}")
        return r.tensors[name].to_float32().astype(np.float64)

    wte = t("token_embd.weight")
    layers = []
    n_layer = int(r.value("gpt2.block_count"))
    for i in range(n_layer):
        b = f"blk.{i}."
        layers.append({
            "ln_1.weight": t(b + "attn_norm.weight"), "ln_1.bias": t(b + "attn_norm.bias"),
            "attn.c_attn.weight": t(b + "attn_qkv.weight").T, "attn.c_attn.bias": t(b + "attn_qkv.bias"),
            "attn.c_proj.weight": t(b + "attn_output.weight").T, "attn.c_proj.bias": t(b + "attn_output.bias"),
            "ln_2.weight": t(b + "ffn_norm.weight"), "ln_2.bias": t(b + "ffn_norm.bias"),
            "mlp.c_fc.weight": t(b + "ffn_up.weight").T, "mlp.c_fc.bias": t(b + "ffn_up.bias"),
            "mlp.c_proj.weight": t(b + "ffn_down.weight").T, "mlp.c_proj.bias": t(b + "ffn_down.bias"),
        })
    return {
        "config": GGUFConfig(r, wte.shape[0]), "wte": wte, "wpe": t("position_embd.weight"), "layers": layers,
        "ln_f.weight": t("output_norm.weight"), "ln_f.bias": t("output_norm.bias"),
        "lm_head": t("output.weight") if "output.weight" in r.tensors else wte,
    }


def load(path, source="auto"):
    """A GGUF file or a Hugging Face folder."""
    return load_gguf(path) if str(path).endswith(".gguf") else load_hf(path, source)


def layer_norm(x, w, b, eps):
    """(T, E) -> (T, E): (x - mean) / sqrt(var + eps) * w + b, biased variance."""
    mu = x.mean(axis=-1, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


def gelu_tanh(x):
    return 0.5 * x * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) * (x + 0.044715 * x ** 3)))


def causal_softmax(scores):
    """(H, T, T) scores -> probabilities; key j > query i gets exactly 0."""
    T = scores.shape[-1]
    masked = np.where(np.tril(np.ones((T, T), dtype=bool)), scores, -np.inf)
    e = np.exp(masked - masked.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def run(params, ids, ablate=None, mean_z=None, hooks=None):
    """The forward pass. ablate: iterable of (layer, head); mean_z: {(layer, head):
    (head_dim,) vector} for mean ablation (absent heads are zeroed). hooks: a dict
    that, when given, receives TransformerLens-named intermediates:
    blocks.L.attn.hook_pattern (H, T, T), blocks.L.attn.hook_z (T, H, head_dim)."""
    c = params["config"]
    ids = np.asarray(ids, dtype=np.int64)
    T = len(ids)
    if T == 0:
        raise ValueError("need at least one token id")
    if ids.min() < 0 or ids.max() >= c.vocab_size:
        raise ValueError(f"token ids must lie in [0, {c.vocab_size}), got {ids.min()}..{ids.max()}")
    if T > c.n_ctx:
        raise ValueError(f"{T} tokens exceed the context length {c.n_ctx}")
    ablate = set(ablate or ())
    for L, H in ablate:
        if not (0 <= L < c.n_layer and 0 <= H < c.n_head):
            raise ValueError(f"head {L}.{H} does not exist ({c.n_layer} layers x {c.n_head} heads)")
    H, D = c.n_head, c.head_dim
    x = params["wte"][ids] + params["wpe"][:T]                              # (T, E)
    for li, p in enumerate(params["layers"]):
        a = layer_norm(x, p["ln_1.weight"], p["ln_1.bias"], c.eps)
        qkv = a @ p["attn.c_attn.weight"] + p["attn.c_attn.bias"]              # (T, 3E)
        q, k, v = (m.reshape(T, H, D).transpose(1, 0, 2) for m in np.split(qkv, 3, axis=1))  # (H, T, D)
        scale = 1.0 / np.sqrt(D) if c.scale_attn_weights else 1.0
        if c.scale_attn_by_inverse_layer_idx:
            scale /= li + 1
        pattern = causal_softmax(q @ k.transpose(0, 2, 1) * scale)           # (H, T, T)
        z = (pattern @ v).transpose(1, 0, 2).copy()                           # (T, H, D)
        for L, h in ablate:
            if L == li:
                z[:, h, :] = mean_z[(L, h)] if mean_z and (L, h) in mean_z else 0.0
        if hooks is not None:
            hooks[f"blocks.{li}.attn.hook_pattern"] = pattern
            hooks[f"blocks.{li}.attn.hook_z"] = z.copy()
        x = x + z.reshape(T, H * D) @ p["attn.c_proj.weight"] + p["attn.c_proj.bias"]
        m = layer_norm(x, p["ln_2.weight"], p["ln_2.bias"], c.eps)
        x = x + gelu_tanh(m @ p["mlp.c_fc.weight"] + p["mlp.c_fc.bias"]) @ p["mlp.c_proj.weight"] \
            + p["mlp.c_proj.bias"]
    x = layer_norm(x, params["ln_f.weight"], params["ln_f.bias"], c.eps)
    return x @ params["lm_head"].T                                            # (T, V)


def forward(params, ids, ablate=None, mean_z=None, return_attention=False):
    """logits (T, vocab) float64 [, list per layer of (n_head, T, T) attention]."""
    hooks = {} if return_attention else None
    logits = run(params, ids, ablate, mean_z, hooks)
    if not return_attention:
        return logits
    return logits, [hooks[f"blocks.{i}.attn.hook_pattern"] for i in range(params["config"].n_layer)]


def mean_head_outputs(params, ids, heads):
    """{(L, H): mean over positions of head L.H's z} from an unablated run on ids."""
    hooks = {}
    run(params, ids, hooks=hooks)
    return {(L, H): hooks[f"blocks.{L}.attn.hook_z"][:, H, :].mean(axis=0) for L, H in heads}


def parse_ids(text):
    try:
        return [int(t) for t in text.replace(",", " ").split()]
    except ValueError:
        raise ValueError(f"token ids must be integers separated by spaces or commas, got {text!r}") from None


def parse_heads(text):
    """"0.1,2.3" -> [(0, 1), (2, 3)] (layer.head, both from 0)."""
    heads = []
    for item in filter(None, (s.strip() for s in text.split(","))):
        parts = item.split(".")
        if len(parts) != 2 or not all(p.isdigit() for p in parts):
            raise ValueError(f"head {item!r} must be written L.H, e.g. 0.3")
        heads.append((int(parts[0]), int(parts[1])))
    return heads


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("hf_dir", help="Hugging Face GPT-2 folder, or a .gguf file")
    ap.add_argument("--ids", required=True, help='token ids, e.g. "1 2 3" or "1,2,3"')
    ap.add_argument("--out", metavar="FILE.npy", help="write float64 logits, shape (1, vocab) for the last "
                                                      "position or (T, vocab) with --all-positions")
    ap.add_argument("--all-positions", action="store_true", help="--out holds every position's logits")
    ap.add_argument("--ablate", default="", metavar="L.H,...", help="heads to ablate, layer.head from 0")
    ap.add_argument("--ablate-mode", choices=["zero", "mean"], default="zero",
                    help="zero the head's z, or replace it by its mean over --mean-ids' positions")
    ap.add_argument("--mean-ids", default=None, help="ids whose unablated run gives the mean z (default: --ids)")
    ap.add_argument("--dump-attention", metavar="FILE.npz",
                    help="write blocks.L.attn.hook_pattern arrays, each (n_head, T, T) float64")
    ap.add_argument("--source", choices=["auto", "safetensors", "bin"], default="auto")
    args = ap.parse_args(argv)
    try:
        ids = parse_ids(args.ids)
        heads = parse_heads(args.ablate)
        params = load(args.hf_dir, args.source)
        mean_z = None
        if heads and args.ablate_mode == "mean":
            mean_z = mean_head_outputs(params, parse_ids(args.mean_ids) if args.mean_ids else ids, heads)
        hooks = {}
        logits = run(params, ids, heads, mean_z, hooks)
        last = logits[-1]
        print(f"tokens {len(ids)}  last position: max {last.max():.10g}  min {last.min():.10g}  "
              f"argmax {int(last.argmax())}")
        if args.out:  # through a file object so numpy does not append ".npy"
            with atomic_open(args.out) as f:
                np.save(f, logits if args.all_positions else logits[-1:])
        if args.dump_attention:
            with atomic_open(args.dump_attention) as f:
                np.savez(f, **{k: v for k, v in hooks.items() if k.endswith("hook_pattern")})
    except (CheckpointError, GGUFError, ValueError, OSError) as e:
        print(f"reference.py: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
