#!/usr/bin/env python3
"""Float64 numpy forward pass of GPT-2, read straight from a Hugging Face folder.

This is the numerical reference the C++ runtime is tested against: it reads
config.json and model.safetensors / pytorch_model.bin (not the GGUF), widens
every weight to float64 and computes, for token ids x[0..T):

  h0   = wte[x] + wpe[0..T)
  per layer l:
    a  = LayerNorm(h; ln_1)                   (biased variance, eps from config)
    q, k, v = split(a @ c_attn.W + c_attn.b)  (n_head heads of head_dim; k and v have
                                               n_head_kv heads, each shared by n_head/n_head_kv
                                               consecutive query heads, when the GGUF says so)
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
        # Grouped key/value heads (llama.cpp's key): query head h reads kv head h // (n_head // n_head_kv).
        self.n_head_kv = int(reader.value("gpt2.attention.head_count_kv", self.n_head))
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
        qkv = a @ p["attn.c_attn.weight"] + p["attn.c_attn.bias"]              # (T, E + 2 E_kv)
        G = getattr(c, "n_head_kv", H)                                       # key/value heads
        q = qkv[:, :H * D].reshape(T, H, D).transpose(1, 0, 2)                 # (H, T, D)
        k, v = (m.reshape(T, G, D).transpose(1, 0, 2) for m in np.split(qkv[:, H * D:], 2, axis=1))  # (G, T, D)
        # Each kv head serves n_head / n_head_kv consecutive query heads (a copy per query head).
        k, v = np.repeat(k, H // G, axis=0), np.repeat(v, H // G, axis=0)    # (H, T, D)
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


# ---------------------------------------------------------------------------
# Direct logit attribution and activation patching (minigpt heads dla / patch;
# definitions in docs/heads.md). Built on run(): its hook_z, and its ablation
# path to replace a head's z (mean_z values may be (T, head_dim) arrays).
# ---------------------------------------------------------------------------

def dla(params, ids, target, contrast=None):
    """Direct logit attribution of the last position of ids to target (minus
    contrast). Returns (components, logit): components maps minigpt's names
    (embed, pos_embed, L{l}H{h}, L{l}.attn_bias, L{l}.mlp, ln_final_bias) to
    float64 contributions; logit is run()'s own logit (difference), which the
    components must sum to. The residual stream is rebuilt here from run()'s
    hook_z, component by component, so that each one is a separate array."""
    c = params["config"]
    ids = np.asarray(ids, dtype=np.int64)
    T, H, D = len(ids), c.n_head, c.head_dim
    hooks = {}
    logits = run(params, ids, hooks=hooks)
    x = params["wte"][ids] + params["wpe"][:T]
    parts = {"embed": params["wte"][ids[-1]], "pos_embed": params["wpe"][T - 1]}
    for li, p in enumerate(params["layers"]):
        z = hooks[f"blocks.{li}.attn.hook_z"]                                    # (T, H, D)
        writes = np.einsum("thd,hde->the", z, p["attn.c_proj.weight"].reshape(H, D, -1))  # (T, H, E)
        for h in range(H):
            parts[f"L{li}H{h}"] = writes[-1, h]
        parts[f"L{li}.attn_bias"] = p["attn.c_proj.bias"]
        x = x + writes.sum(axis=1) + p["attn.c_proj.bias"]
        m = layer_norm(x, p["ln_2.weight"], p["ln_2.bias"], c.eps)
        mlp = gelu_tanh(m @ p["mlp.c_fc.weight"] + p["mlp.c_fc.bias"]) @ p["mlp.c_proj.weight"] + p["mlp.c_proj.bias"]
        parts[f"L{li}.mlp"] = mlp[-1]
        x = x + mlp
    xf = x[-1]
    sigma = np.sqrt(((xf - xf.mean()) ** 2).mean() + c.eps)                   # frozen final LayerNorm scale
    u = params["lm_head"][target] - (params["lm_head"][contrast] if contrast is not None else 0.0)
    g = params["ln_f.weight"] * u
    out = {name: float((v - v.mean()) @ g / sigma) for name, v in parts.items()}
    out["ln_final_bias"] = float(params["ln_f.bias"] @ u)
    logit = logits[-1, target] - (logits[-1, contrast] if contrast is not None else 0.0)
    return out, float(logit)


def patch_metric(logits, answer, wrong=None):
    """log p(answer) from one position's logits, or logit(answer) - logit(wrong)."""
    if wrong is not None:
        return float(logits[answer] - logits[wrong])
    m = logits.max()
    return float(logits[answer] - m - np.log(np.exp(logits - m).sum()))


def patched_logits(params, clean, corrupt, heads, pos=None):
    """Last-position logits of corrupt with each (layer, head)'s z replaced by
    the clean run's, at every position (pos None) or at pos alone. Layers are
    patched in order: a head's corrupted z at the other positions is read from
    a run with the earlier layers already patched."""
    hc = {}
    run(params, clean, hooks=hc)
    patches = {}
    for layer in sorted({L for L, _ in heads}):
        hk = {}
        if pos is not None:
            run(params, corrupt, ablate=list(patches), mean_z=patches, hooks=hk)
        for L, h in heads:
            if L != layer:
                continue
            z = hc[f"blocks.{L}.attn.hook_z"][:, h, :].copy()
            if pos is not None:
                mixed = hk[f"blocks.{L}.attn.hook_z"][:, h, :].copy()
                mixed[pos] = z[pos]
                z = mixed
            patches[(L, h)] = z
    return run(params, corrupt, ablate=list(patches), mean_z=patches)[-1]


def patching(params, clean, corrupt, answer, wrong=None, per_position=False):
    """{"clean", "corrupted": metrics; "restored": (n_layer, n_head) for each head
    patched at every position; with per_position "restored_pos": (T, n_layer,
    n_head)}, restored = (patched - corrupted) / (clean - corrupted)."""
    c = params["config"]
    if len(clean) != len(corrupt):
        raise ValueError(f"clean and corrupted ids differ in length ({len(clean)} and {len(corrupt)})")
    metric = lambda logits: patch_metric(logits, answer, wrong)  # noqa: E731
    m_clean, m_corrupt = metric(run(params, clean)[-1]), metric(run(params, corrupt)[-1])
    restore = lambda m: (m - m_corrupt) / (m_clean - m_corrupt)  # noqa: E731
    out = {"clean": m_clean, "corrupted": m_corrupt, "restored": np.zeros((c.n_layer, c.n_head))}
    for L in range(c.n_layer):
        for h in range(c.n_head):
            out["restored"][L, h] = restore(metric(patched_logits(params, clean, corrupt, [(L, h)])))
    if per_position:
        out["restored_pos"] = np.zeros((len(clean), c.n_layer, c.n_head))
        for p in range(len(clean)):
            for L in range(c.n_layer):
                for h in range(c.n_head):
                    out["restored_pos"][p, L, h] = restore(metric(patched_logits(params, clean, corrupt, [(L, h)], p)))
    return out


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
