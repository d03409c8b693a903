#!/usr/bin/env python3
"""Reads llm.c's GPT-2 checkpoints (gpt2_124M.bin, gpt2_124M_bf16.bin, the
model_*.bin files train_gpt2.cu writes) with numpy only.

Layout (karpathy/llm.c train_gpt2.py write_model / train_gpt2.c
gpt2_build_from_checkpoint), little-endian:
  header   256 int32: [0] magic 20240326, [1] version (3: every parameter fp32,
           5: every parameter bf16; both with a padded vocabulary), [2] maxT,
           [3] V, [4] L, [5] NH, [6] C, [7] Vp (V padded up, to a multiple of 128)
  params   16 arrays back to back, each stacked over the layers, nn.Linear (out, in):
           wte (Vp, C), wpe (maxT, C), ln1w (L, C), ln1b (L, C), qkvw (L, 3C, C),
           qkvb (L, 3C), attprojw (L, C, C), attprojb (L, C), ln2w (L, C), ln2b (L, C),
           fcw (L, 4C, C), fcb (L, 4C), fcprojw (L, C, 4C), fcprojb (L, C), lnfw (C),
           lnfb (C)
The file must be exactly 1024 bytes + the parameters. The padded rows V..Vp of
wte are dropped (llm.c never samples them). The head is tied to wte. llm.c's
GELU is GPT-2's tanh form, as in GGUF. The tokenizer is not in the file
(gpt2_tokenizer.bin holds token bytes but no merges): GPT-2 BPE comes from
vocab.json + merges.txt (convert.py --tokenizer-dir).

Every array is a view of a memory map of the file (fp32), or widened from it one
tensor at a time while the GGUF is written (bf16), its pages released once written.
"""
import os
from collections import OrderedDict

import numpy as np

from mapped_io import release_pages
from torch_pickle import CheckpointError, bf16_to_f32

MAGIC = 20240326
# llm.c's other .bin files, by their header's magic (train_gpt2.py write_state /
# write_tokenizer, dev/data/data_common.py write_datafile)
OTHER_FILES = {20240327: "debug state file (gpt2_124M_debug_state.bin)",
               20240328: "tokenizer file (gpt2_tokenizer.bin)", 20240520: "token data file (*.bin shards)",
               20240801: "token data file (*.bin shards)", 20240522: "evaluation data file (hellaswag/mmlu .bin)"}
HEADER_BYTES = 256 * 4
VERSIONS = {3: ("fp32", np.dtype("<f4")), 5: ("bf16", np.dtype("<u2"))}
MAX_DIM = 1 << 24  # far beyond any GPT-2; keeps the size arithmetic sane for garbage headers


class LlmcConfig:
    def __init__(self, header, path):
        self.version = int(header[1])
        self.n_ctx, self.vocab_size, self.n_layer, self.n_head, self.n_embd, self.padded_vocab = \
            (int(v) for v in header[2:8])
        for name in ("n_ctx", "vocab_size", "n_layer", "n_head", "n_embd", "padded_vocab"):
            v = getattr(self, name)
            if not 0 < v <= MAX_DIM:
                raise CheckpointError(f"{path}: header {name} = {v} is out of range (1..{MAX_DIM})")
        if self.padded_vocab < self.vocab_size:
            raise CheckpointError(f"{path}: header padded vocab size {self.padded_vocab} is smaller than "
                                  f"the vocab size {self.vocab_size}")
        if self.n_embd % self.n_head:
            raise CheckpointError(f"{path}: header C={self.n_embd} is not divisible by NH={self.n_head}")
        self.n_inner = 4 * self.n_embd
        self.eps = 1e-5  # llm.c's layernorm_forward

    def shapes(self):
        """(llm.c name, shape) in file order."""
        C, L = self.n_embd, self.n_layer
        return [("wte", (self.padded_vocab, C)), ("wpe", (self.n_ctx, C)), ("ln1w", (L, C)), ("ln1b", (L, C)),
                ("qkvw", (L, 3 * C, C)), ("qkvb", (L, 3 * C)), ("attprojw", (L, C, C)), ("attprojb", (L, C)),
                ("ln2w", (L, C)), ("ln2b", (L, C)), ("fcw", (L, 4 * C, C)), ("fcb", (L, 4 * C)),
                ("fcprojw", (L, C, 4 * C)), ("fcprojb", (L, C)), ("lnfw", (C,)), ("lnfb", (C,))]


# llm.c array -> Hugging Face canonical name of one layer's slice ({} = the layer)
PER_LAYER = {"ln1w": "h.{}.ln_1.weight", "ln1b": "h.{}.ln_1.bias", "qkvw": "h.{}.attn.c_attn.weight",
             "qkvb": "h.{}.attn.c_attn.bias", "attprojw": "h.{}.attn.c_proj.weight",
             "attprojb": "h.{}.attn.c_proj.bias", "ln2w": "h.{}.ln_2.weight", "ln2b": "h.{}.ln_2.bias",
             "fcw": "h.{}.mlp.c_fc.weight", "fcb": "h.{}.mlp.c_fc.bias", "fcprojw": "h.{}.mlp.c_proj.weight",
             "fcprojb": "h.{}.mlp.c_proj.bias"}


class Widened:
    """A bf16 tensor of the file, widened to float32 when the GGUF writer reaches it;
    release() then drops its pages of the memory map (gguf.release_pages)."""

    def __init__(self, bits):
        self.bits, self.shape, self.dtype = bits, bits.shape, np.dtype(np.float32)

    def array(self):
        return bf16_to_f32(self.bits).reshape(self.shape)

    def release(self):
        release_pages(self.bits)


def _as_float(raw, is_bf16):
    return Widened(raw) if is_bf16 else raw


def load_llmc(path):
    """Returns (LlmcConfig, OrderedDict canonical name -> array or Deferred) with Hugging
    Face's canonical names in nn.Linear (out, in) layout; wte without the padded rows."""
    size = os.path.getsize(path)
    if size < HEADER_BYTES:
        raise CheckpointError(f"{path}: file is {size} bytes, too short for llm.c's {HEADER_BYTES}-byte header")
    mm = np.memmap(path, dtype=np.uint8, mode="r")
    header = mm[:HEADER_BYTES].view("<i4")
    if int(header[0]) != MAGIC:
        raise CheckpointError(f"{path}: magic {int(header[0])} is not llm.c's model magic {MAGIC}")
    version = int(header[1])
    if version not in VERSIONS:
        hint = " (versions 1 and 2 predate the padded vocabulary: re-export with llm.c's current train_gpt2.py)" \
            if version in (1, 2) else ""
        raise CheckpointError(f"{path}: llm.c checkpoint version {version} is not supported "
                              f"(3 = fp32, 5 = bf16){hint}")
    config = LlmcConfig(header, path)
    kind, dtype = VERSIONS[version]
    shapes = config.shapes()
    n_params = sum(int(np.prod(s, dtype=object)) for _, s in shapes)
    want = HEADER_BYTES + n_params * dtype.itemsize
    if size != want:
        raise CheckpointError(
            f"{path}: the header (maxT={config.n_ctx}, V={config.vocab_size}, Vp={config.padded_vocab}, "
            f"L={config.n_layer}, NH={config.n_head}, C={config.n_embd}, {kind}) describes {n_params} parameters "
            f"= {want} bytes with the header, but the file has {size} bytes")
    arrays, pos = {}, HEADER_BYTES
    for name, shape in shapes:
        n = int(np.prod(shape)) * dtype.itemsize
        arrays[name] = mm[pos:pos + n].view(dtype).reshape(shape)
        pos += n
    is_bf16 = kind == "bf16"
    params = OrderedDict()
    params["wte.weight"] = _as_float(arrays["wte"][:config.vocab_size], is_bf16)
    params["wpe.weight"] = _as_float(arrays["wpe"], is_bf16)
    for i in range(config.n_layer):
        for name, canon in PER_LAYER.items():
            params[canon.format(i)] = _as_float(arrays[name][i], is_bf16)
    params["ln_f.weight"] = _as_float(arrays["lnfw"], is_bf16)
    params["ln_f.bias"] = _as_float(arrays["lnfb"], is_bf16)
    return config, params
