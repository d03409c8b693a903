#!/usr/bin/env python3
"""Reads nanoGPT's ckpt.pt (karpathy/nanoGPT train.py and model.py) with numpy only.

ckpt.pt is torch.save of a dict:
  model         the GPT module's state dict (below)
  optimizer     AdamW's state (exp_avg, exp_avg_sq: twice the model) -- never read
  model_args    n_layer, n_head, n_embd, block_size, bias, vocab_size (, dropout)
  iter_num, best_val_loss (a 0-d tensor), config (train.py's settings: dataset, ...)
State dict names (model.py): transformer.wte.weight (vocab_size, n_embd),
transformer.wpe.weight (block_size, n_embd), transformer.h.N.ln_1/ln_2.{weight,bias},
transformer.h.N.attn.c_attn (3C x C), attn.c_proj (C x C), mlp.c_fc (4C x C),
mlp.c_proj (C x 4C), each {weight, bias}, transformer.ln_f.{weight,bias} and
lm_head.weight (tied to wte: the same storage). Linear weights are nn.Linear's
(out, in), which is GGUF's layout as well: nothing is transposed. A model saved
after torch.compile prefixes every name with "_orig_mod."; torch < 2 (no flash
attention) adds the causal-mask buffers attn.bias (1, 1, T, T), which are skipped.
bias=False models have no bias tensors and LayerNorms without shift: the
converter writes zeros for them (GGUF's gpt2 graph, llama.cpp's included, has biases).

nanoGPT's MLP uses nn.GELU() (the exact erf form); GGUF's gpt2 graph evaluates
GPT-2's tanh approximation. The two differ by at most 4.8e-4 per activation (at x = 2.7); the
converter says so and the tests measure what it does to the logits.
"""
import os
from collections import OrderedDict

import numpy as np

from torch_pickle import CheckpointError, LazyTensor, TorchArchive

PREFIXES = ("_orig_mod.", "transformer.")
ARG_KEYS = ("n_layer", "n_head", "n_embd", "block_size", "vocab_size")


class NanoGPTConfig:
    """model_args, under the names convert.py uses."""

    def __init__(self, args, path):
        for k in ARG_KEYS:
            v = args.get(k)
            if type(v) is not int or v <= 0:
                raise CheckpointError(f"{path}: model_args[{k!r}] must be a positive integer, got {v!r}")
        self.n_layer, self.n_head, self.n_embd = args["n_layer"], args["n_head"], args["n_embd"]
        self.n_ctx, self.vocab_size = args["block_size"], args["vocab_size"]
        self.bias = bool(args.get("bias", True))
        self.n_inner = 4 * self.n_embd
        self.eps = 1e-5  # model.py's LayerNorm: F.layer_norm(..., 1e-5)
        if self.n_embd % self.n_head:
            raise CheckpointError(f"{path}: n_embd={self.n_embd} is not divisible by n_head={self.n_head}")


def expected_shapes(c):
    """Canonical name (no prefix) -> shape, nn.Linear (out, in) layout."""
    C, F = c.n_embd, c.n_inner
    shapes = OrderedDict([("wte.weight", (c.vocab_size, C)), ("wpe.weight", (c.n_ctx, C))])
    for i in range(c.n_layer):
        p = f"h.{i}."
        for name, out_dim, in_dim in (("attn.c_attn", 3 * C, C), ("attn.c_proj", C, C),
                                      ("mlp.c_fc", F, C), ("mlp.c_proj", C, F)):
            shapes[p + name + ".weight"] = (out_dim, in_dim)
            shapes[p + name + ".bias"] = (out_dim,)
        for ln in ("ln_1", "ln_2"):
            shapes[p + ln + ".weight"] = (C,)
            shapes[p + ln + ".bias"] = (C,)
    shapes["ln_f.weight"] = (C,)
    shapes["ln_f.bias"] = (C,)
    return shapes


def _canonical(name):
    for p in PREFIXES:
        if name.startswith(p):
            name = name[len(p):]
    return name


def read_checkpoint(path):
    """The unpickled ckpt.pt dict (tensors lazy) after checking it is nanoGPT's."""
    archive = TorchArchive(path)
    ck = archive.load()
    if not isinstance(ck, dict) or not isinstance(ck.get("model"), dict) or not isinstance(ck.get("model_args"), dict):
        keys = sorted(map(str, ck)) if isinstance(ck, dict) else type(ck).__name__
        raise CheckpointError(f"{path}: not a nanoGPT checkpoint: expected a dict with 'model' and "
                              f"'model_args' (as nanoGPT's train.py saves), found {keys}")
    return ck


def load_nanogpt(path):
    """Returns (NanoGPTConfig, OrderedDict canonical name -> LazyTensor or array, train config dict).

    Canonical names are Hugging Face's without "transformer." (h.0.attn.c_attn.weight)
    with weights in (out, in) layout; "lm_head.weight" is present only when the head
    is not tied to wte. Missing biases of bias=False models are zeros."""
    ck = read_checkpoint(path)
    config = NanoGPTConfig(ck["model_args"], path)
    shapes = expected_shapes(config)
    found = OrderedDict()
    for name, t in ck["model"].items():
        if not isinstance(name, str) or not isinstance(t, LazyTensor):
            raise CheckpointError(f"{path}: model entry {name!r} is not a named tensor")
        canon = _canonical(name)
        if canon.endswith(".attn.bias") and len(t.shape) == 4:
            continue  # causal-mask buffer of model.py's slow attention path
        if canon == "lm_head.weight":
            want = (config.vocab_size, config.n_embd)
        elif canon in shapes:
            want = shapes[canon]
        else:
            raise CheckpointError(f"{path}: unexpected tensor {name!r} for nanoGPT's GPT with "
                                  f"{config.n_layer} layers (a modified model.py is not GPT-2)")
        if t.shape != want:
            raise CheckpointError(f"{path}: tensor {name!r} has shape {t.shape}, expected {want} from model_args")
        if t.dtype.kind != "f":
            raise CheckpointError(f"{path}: tensor {name!r} has dtype {t.dtype}, expected floating point")
        if canon in found:
            raise CheckpointError(f"{path}: tensor {canon!r} appears twice (with and without a prefix)")
        found[canon] = t
    params = OrderedDict()
    for canon, shape in shapes.items():
        if canon in found:
            params[canon] = found[canon]
        elif canon.endswith(".bias") and not config.bias:
            params[canon] = np.zeros(shape, dtype=np.float32)
        else:
            raise CheckpointError(f"{path}: missing tensor {canon!r} (model_args: bias={config.bias})")
    head = found.get("lm_head.weight")
    if head is not None and not head.same_data(found["wte.weight"]) \
            and not np.array_equal(head.array(), found["wte.weight"].array()):
        params["lm_head.weight"] = head
    train_config = ck.get("config") if isinstance(ck.get("config"), dict) else {}
    return config, params, train_config


def find_meta(path, train_config):
    """meta.pkl as nanoGPT's sample.py finds it (data/DATASET/meta.pkl from the
    training folder), also next to ckpt.pt. Returns (path or None, the paths tried)."""
    here = os.path.dirname(os.path.abspath(path))
    candidates = [os.path.join(here, "meta.pkl")]
    dataset = train_config.get("dataset")
    if isinstance(dataset, str) and dataset and os.path.basename(dataset) == dataset:
        candidates += [os.path.join(here, "data", dataset, "meta.pkl"),
                       os.path.join(os.path.dirname(here), "data", dataset, "meta.pkl"),
                       os.path.join("data", dataset, "meta.pkl")]
    return next((c for c in candidates if os.path.isfile(c)), None), candidates
