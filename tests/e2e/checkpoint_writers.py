"""Checkpoints written the way their own projects write them, for the converter tests.

nanoGPT (karpathy/nanoGPT model.py + train.py): NanoGPT below mirrors model.py's
GPT module (its parameter and buffer names, nn.Linear layers, LayerNorm with an
optional bias, weight tying, and the attn.bias causal-mask buffer that model.py
registers when torch has no flash attention, as Debian's torch 1.13 has not);
save_nanogpt writes train.py's checkpoint dict with torch.save: model,
optimizer (AdamW after one step), model_args, iter_num, best_val_loss, config.
compiled=True renames the state dict as a torch.compile'd model's (_orig_mod.).
write_meta writes data/shakespeare_char/prepare.py's meta.pkl.

llm.c (karpathy/llm.c train_gpt2.py write_model / write_tensors / pad_vocab):
save_llmc writes the 256-int32 header (magic 20240326, version 3 fp32 or 5 bf16,
maxT, V, L, NH, C, Vp) and the 16 parameter arrays in llm.c's order, through
torch exactly as write_fp32 / write_bf16 do; the vocabulary is padded to a
multiple of 128 with zero rows (pad_vocab, without its V == 50257 assertion so
that small test vocabularies work).

reference_params turns a Linear-layout state dict into scripts/reference.py's
params (Conv1D layout), so the float64 reference runs on the same weights.
"""
import math
import os
import pickle
from collections import OrderedDict

import numpy as np

import reference  # scripts/, on sys.path through helpers


def _torch():
    import torch
    return torch


def nanogpt_class():
    """model.py's GPT, built on demand (torch is imported only by the tests that need it)."""
    torch = _torch()
    nn, F = torch.nn, torch.nn.functional

    class LayerNorm(nn.Module):
        def __init__(self, ndim, bias):
            super().__init__()
            self.weight = nn.Parameter(torch.ones(ndim))
            self.bias = nn.Parameter(torch.zeros(ndim)) if bias else None

        def forward(self, x):
            return F.layer_norm(x, self.weight.shape, self.weight, self.bias, 1e-5)

    class CausalSelfAttention(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.c_attn = nn.Linear(c["n_embd"], 3 * c["n_embd"], bias=c["bias"])
            self.c_proj = nn.Linear(c["n_embd"], c["n_embd"], bias=c["bias"])
            self.n_head, self.n_embd = c["n_head"], c["n_embd"]
            self.flash = hasattr(F, "scaled_dot_product_attention")
            if not self.flash:
                T = c["block_size"]
                self.register_buffer("bias", torch.tril(torch.ones(T, T)).view(1, 1, T, T))

        def forward(self, x):
            B, T, C = x.size()
            q, k, v = self.c_attn(x).split(self.n_embd, dim=2)
            k = k.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
            q = q.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
            v = v.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
            att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))
            att = att.masked_fill(torch.tril(torch.ones(T, T, dtype=torch.bool)) == 0, float("-inf"))
            y = F.softmax(att, dim=-1) @ v
            return self.c_proj(y.transpose(1, 2).contiguous().view(B, T, C))

    class MLP(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.c_fc = nn.Linear(c["n_embd"], 4 * c["n_embd"], bias=c["bias"])
            self.gelu = nn.GELU()  # model.py: the exact (erf) GELU
            self.c_proj = nn.Linear(4 * c["n_embd"], c["n_embd"], bias=c["bias"])

        def forward(self, x):
            return self.c_proj(self.gelu(self.c_fc(x)))

    class Block(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.ln_1 = LayerNorm(c["n_embd"], bias=c["bias"])
            self.attn = CausalSelfAttention(c)
            self.ln_2 = LayerNorm(c["n_embd"], bias=c["bias"])
            self.mlp = MLP(c)

        def forward(self, x):
            x = x + self.attn(self.ln_1(x))
            return x + self.mlp(self.ln_2(x))

    class GPT(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.transformer = nn.ModuleDict(dict(
                wte=nn.Embedding(c["vocab_size"], c["n_embd"]),
                wpe=nn.Embedding(c["block_size"], c["n_embd"]),
                drop=nn.Dropout(0.0),
                h=nn.ModuleList([Block(c) for _ in range(c["n_layer"])]),
                ln_f=LayerNorm(c["n_embd"], bias=c["bias"]),
            ))
            self.lm_head = nn.Linear(c["n_embd"], c["vocab_size"], bias=False)
            self.transformer.wte.weight = self.lm_head.weight  # weight tying, as model.py

        def forward(self, idx, tanh_gelu=False):
            """Logits at every position (model.py computes the last only at inference)."""
            for block in self.transformer.h:
                block.mlp.gelu = nn.GELU(approximate="tanh" if tanh_gelu else "none")
            pos = torch.arange(0, idx.size(1), dtype=torch.long)
            x = self.transformer.wte(idx) + self.transformer.wpe(pos)
            for block in self.transformer.h:
                x = block(x)
            return self.lm_head(self.transformer.ln_f(x))

    return GPT


def make_nanogpt(model_args, seed=0, std=0.1):
    """model.py's GPT with seeded random weights (std larger than model.py's 0.02 init,
    so logits span a few units and greedy choices are not decided by rounding)."""
    torch = _torch()
    model = nanogpt_class()(model_args)
    rng = np.random.RandomState(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(("ln_1.weight", "ln_2.weight", "ln_f.weight")):
                v = 1.0 + 0.1 * rng.standard_normal(p.shape)
            elif name.endswith(".bias"):
                v = 0.02 * rng.standard_normal(p.shape)
            else:
                v = std * rng.standard_normal(p.shape)
            p.copy_(torch.from_numpy(v.astype(np.float32)))
    return model


def save_nanogpt(path, model, model_args, compiled=False, best_val_loss=None, dataset="shakespeare_char"):
    """train.py's checkpoint, saved with torch.save. best_val_loss: a 0-d tensor as
    train.py keeps it (losses.mean()) unless given (e.g. a numpy scalar)."""
    torch = _torch()
    opt = torch.optim.AdamW(model.parameters(), lr=6e-4, betas=(0.9, 0.95), weight_decay=0.1)
    model(torch.zeros(1, 4, dtype=torch.long)).sum().backward()
    opt.step()
    sd = model.state_dict()
    if compiled:
        sd = OrderedDict(("_orig_mod." + k, v) for k, v in sd.items())
    config = {"out_dir": "out", "eval_interval": 250, "dataset": dataset, "batch_size": 12, "block_size":
              model_args["block_size"], "learning_rate": 6e-4, "decay_lr": True, "compile": compiled,
              "dtype": "float16", "device": "cpu", "bias": model_args["bias"], "dropout": 0.0}
    checkpoint = {"model": sd, "optimizer": opt.state_dict(), "model_args": dict(model_args, dropout=0.0),
                  "iter_num": 2000, "config": config,
                  "best_val_loss": torch.tensor([1.4567, 1.5]).mean() if best_val_loss is None else best_val_loss}
    torch.save(checkpoint, path)


def write_meta(path, text):
    """data/shakespeare_char/prepare.py: chars = sorted(list(set(data)))."""
    chars = sorted(list(set(text)))
    meta = {"vocab_size": len(chars), "itos": {i: ch for i, ch in enumerate(chars)},
            "stoi": {ch: i for i, ch in enumerate(chars)}}
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        pickle.dump(meta, f)
    return chars


LLMC_ORDER = ["ln_1.weight", "ln_1.bias", "attn.c_attn.weight", "attn.c_attn.bias", "attn.c_proj.weight",
              "attn.c_proj.bias", "ln_2.weight", "ln_2.bias", "mlp.c_fc.weight", "mlp.c_fc.bias",
              "mlp.c_proj.weight", "mlp.c_proj.bias"]


def save_llmc(path, model, model_args, dtype="float32", multiple=128):
    """train_gpt2.py's write_model(model, path, dtype) for a (bias=True) GPT."""
    torch = _torch()
    F = torch.nn.functional

    def write_fp32(t, f):
        f.write(t.detach().cpu().to(torch.float32).numpy().tobytes())

    def write_bf16(t, f):
        f.write(t.detach().cpu().to(torch.bfloat16).view(torch.int16).numpy().tobytes())

    write = write_fp32 if dtype == "float32" else write_bf16
    header = torch.zeros(256, dtype=torch.int32)
    header[0], header[1] = 20240326, {"float32": 3, "bfloat16": 5}[dtype]
    header[2], header[3] = model_args["block_size"], model_args["vocab_size"]
    header[4], header[5], header[6] = model_args["n_layer"], model_args["n_head"], model_args["n_embd"]
    params = {name: p.cpu() for name, p in model.named_parameters()}
    wte = params["transformer.wte.weight"]
    V = wte.size(0)
    Vp = ((V + multiple - 1) // multiple) * multiple
    params["transformer.wte.weight"] = wte if Vp == V else F.pad(wte, (0, 0, 0, Vp - V), value=0)
    header[7] = Vp
    L = model_args["n_layer"]
    with open(path, "wb") as f:
        f.write(header.numpy().tobytes())
        write(params["transformer.wte.weight"], f)
        write(params["transformer.wpe.weight"], f)
        for name in LLMC_ORDER:
            for i in range(L):
                write(params[f"transformer.h.{i}.{name}"], f)
        write(params["transformer.ln_f.weight"], f)
        write(params["transformer.ln_f.bias"], f)


def linear_state(model, dtype=None):
    """Canonical name (no "transformer.") -> float64 numpy array, Linear layout; zeros
    for the biases of a bias=False model. dtype=torch.bfloat16 rounds as llm.c's bf16 file."""
    out = {}
    for name, p in model.named_parameters():
        t = p.detach()
        if dtype is not None:
            t = t.to(dtype)
        out[name[len("transformer."):] if name.startswith("transformer.") else name] = t.float().numpy().astype(np.float64)
    return out


class _Config:
    def __init__(self, **kw):
        self.__dict__.update(kw)


def reference_params(sd, n_head, rows):
    """scripts/reference.py's params from a Linear-layout state dict (first `rows` rows of
    the embedding); missing biases (bias=False) are zeros."""
    E = sd["wte.weight"].shape[1]
    n_layer = sum(1 for k in sd if k.endswith(".ln_1.weight"))

    def get(name, shape):
        return sd[name] if name in sd else np.zeros(shape)

    layers = []
    for i in range(n_layer):
        p = f"h.{i}."
        layer = {}
        for ln in ("ln_1", "ln_2"):
            layer[ln + ".weight"] = sd[p + ln + ".weight"]
            layer[ln + ".bias"] = get(p + ln + ".bias", (E,))
        for lin in ("attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj"):
            w = sd[p + lin + ".weight"]
            layer[lin + ".weight"] = w.T  # (out, in) -> Conv1D (in, out)
            layer[lin + ".bias"] = get(p + lin + ".bias", (w.shape[0],))
        layers.append(layer)
    wte = sd["wte.weight"][:rows]
    config = _Config(n_layer=n_layer, n_head=n_head, n_embd=E, head_dim=E // n_head, n_ctx=sd["wpe.weight"].shape[0],
                     eps=1e-5, vocab_size=rows, scale_attn_weights=True, scale_attn_by_inverse_layer_idx=False)
    return {"config": config, "wte": wte, "wpe": sd["wpe.weight"], "layers": layers,
            "ln_f.weight": sd["ln_f.weight"], "ln_f.bias": get("ln_f.bias", (E,)),
            "lm_head": sd.get("lm_head.weight", sd["wte.weight"])[:rows]}


def reference_greedy(params, ids, n, stop_id=None):
    """Greedy continuation by the float64 reference (stops after stop_id, as generate does)."""
    ids, out = list(ids), []
    for _ in range(n):
        nxt = int(reference.forward(params, ids)[-1].argmax())
        out.append(nxt)
        ids.append(nxt)
        if nxt == stop_id:
            break
    return out
