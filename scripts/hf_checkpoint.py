#!/usr/bin/env python3
"""Reads (and, for test data, writes) Hugging Face GPT-2 checkpoints with numpy only.

Formats:
  model.safetensors   8-byte little-endian header length N, N bytes of JSON
                      {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {...}},
                      then the raw little-endian byte buffer the offsets point into.
  pytorch_model.bin   torch.save's zip archive: PREFIX/data.pkl (a pickle of the state
                      dict) and PREFIX/data/KEY (one raw buffer per storage). The pickle is
                      read by torch_pickle.py's restricted Unpickler, which refuses every
                      global except the handful torch.save emits for tensors and plain values.
Sharded checkpoints (*.index.json with a weight_map) are read shard by shard.

load_gpt2(dir) returns the config and the GPT-2 tensors under canonical names
(without the "transformer." prefix), every shape checked against config.json.

Run as a script it lists a checkpoint's tensors:  hf_checkpoint.py HF_DIR
"""
import argparse
import json
import os
import sys
from collections import OrderedDict

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_pickle import CheckpointError, LazyTensor, TorchArchive, bf16_to_f32  # noqa: E402

# safetensors dtype -> numpy dtype. BF16 has no numpy type: it is read as uint16
# bit patterns and widened to float32 (exactly).
SAFETENSORS_DTYPES = {
    "F64": "<f8", "F32": "<f4", "F16": "<f2", "BF16": "<u2",
    "I64": "<i8", "I32": "<i4", "I16": "<i2", "I8": "i1", "U8": "u1", "BOOL": "?",
}
MAX_SAFETENSORS_HEADER = 100 * 1024 * 1024  # the limit the reference safetensors library uses
_bf16_to_f32 = bf16_to_f32


# ---------------------------------------------------------------- safetensors
def _no_duplicate_keys(pairs):
    d = {}
    for k, v in pairs:
        if k in d:
            raise CheckpointError(f"duplicate key {k!r} in the JSON header")
        d[k] = v
    return d


def read_safetensors(path):
    """Returns OrderedDict name -> numpy array (BF16 widened to float32) after
    validating the header: sane length, every offset inside the buffer, no
    overlaps or gaps, byte size == prod(shape) * itemsize."""
    size = os.path.getsize(path)
    if size < 8:
        raise CheckpointError(f"{path}: file is {size} bytes, too short for a safetensors header")
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        if n > MAX_SAFETENSORS_HEADER:
            raise CheckpointError(f"{path}: header length {n} exceeds the {MAX_SAFETENSORS_HEADER}-byte limit")
        if 8 + n > size:
            raise CheckpointError(f"{path}: header length {n} runs past the end of the file ({size} bytes)")
        raw = f.read(n)
    try:
        header = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicate_keys)
    except CheckpointError as e:
        raise CheckpointError(f"{path}: {e}") from None
    except (UnicodeDecodeError, ValueError) as e:
        raise CheckpointError(f"{path}: header is not valid UTF-8 JSON ({e})") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{path}: header must be a JSON object")
    meta = header.pop("__metadata__", {})
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise CheckpointError(f"{path}: __metadata__ must map strings to strings")
    buf_start, buf_len = 8 + n, size - 8 - n
    entries = []
    for name, info in header.items():
        where = f"{path}: tensor {name!r}"
        if not isinstance(info, dict) or set(info) - {"dtype", "shape", "data_offsets"} or len(info) != 3:
            raise CheckpointError(f"{where}: entry must have exactly dtype, shape and data_offsets")
        dtype, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
        if dtype not in SAFETENSORS_DTYPES:
            raise CheckpointError(f"{where}: unknown dtype {dtype!r} (known: {', '.join(SAFETENSORS_DTYPES)})")
        if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
            raise CheckpointError(f"{where}: shape must be a list of non-negative integers, got {shape!r}")
        if (not isinstance(offsets, list) or len(offsets) != 2
                or not all(type(o) is int for o in offsets) or not 0 <= offsets[0] <= offsets[1]):
            raise CheckpointError(f"{where}: data_offsets must be [begin, end] with 0 <= begin <= end, got {offsets!r}")
        if offsets[1] > buf_len:
            raise CheckpointError(f"{where}: data_offsets {offsets} run past the end of the "
                                  f"{buf_len}-byte data buffer")
        itemsize = np.dtype(SAFETENSORS_DTYPES[dtype]).itemsize
        expected = int(np.prod(shape, dtype=object)) * itemsize if shape else itemsize
        if offsets[1] - offsets[0] != expected:
            raise CheckpointError(f"{where}: {dtype}{shape} needs {expected} bytes but data_offsets "
                                  f"{offsets} span {offsets[1] - offsets[0]}")
        entries.append((offsets[0], offsets[1], name, dtype, shape))
    entries.sort()
    pos = 0
    for begin, end, name, _, _ in entries:
        if begin < pos:
            raise CheckpointError(f"{path}: tensor {name!r} data_offsets [{begin}, {end}] overlap the previous tensor")
        if begin > pos:
            raise CheckpointError(f"{path}: gap of {begin - pos} bytes before tensor {name!r}")
        pos = end
    if pos != buf_len:
        raise CheckpointError(f"{path}: the data buffer has {buf_len - pos} bytes that no tensor uses")
    mm = np.memmap(path, dtype=np.uint8, mode="r") if buf_len else np.zeros(8 + n, np.uint8)
    out = OrderedDict()
    by_name = {e[2]: e for e in entries}
    for begin, end, name, dtype, shape in (by_name[k] for k in header):
        arr = mm[buf_start + begin:buf_start + end].view(SAFETENSORS_DTYPES[dtype]).reshape(shape)
        out[name] = _bf16_to_f32(arr).reshape(shape) if dtype == "BF16" else arr
    return out


def write_safetensors(path, tensors, metadata=None):
    """tensors: name -> numpy array (float32/float16/float64/int/bool) or
    ("BF16", float32 array). Written to PATH.tmp, then renamed."""
    header, blobs, pos = {}, [], 0
    np_to_st = {np.dtype(v): k for k, v in SAFETENSORS_DTYPES.items() if k != "BF16"}
    for name, value in tensors.items():
        if isinstance(value, tuple) and value[0] == "BF16":
            arr = np.asarray(value[1], dtype=np.float32)
            bits = np.ascontiguousarray(arr).view(np.uint32)
            blob = ((bits.astype(np.uint64) + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype("<u2").tobytes()
            dtype, shape = "BF16", arr.shape
        else:
            arr = np.ascontiguousarray(value)
            if arr.dtype not in np_to_st:
                raise ValueError(f"{name}: dtype {arr.dtype} cannot be written to safetensors")
            dtype, shape = np_to_st[arr.dtype], arr.shape
            blob = arr.tobytes()
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [pos, pos + len(blob)]}
        blobs.append(blob)
        pos += len(blob)
    if metadata:
        header["__metadata__"] = dict(metadata)
    raw = json.dumps(header, separators=(",", ":")).encode("utf-8")
    raw += b" " * ((8 - len(raw) % 8) % 8)
    tmp = path + ".tmp"
    try:
        with open(tmp, "wb") as f:
            f.write(len(raw).to_bytes(8, "little") + raw)
            for blob in blobs:
                f.write(blob)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


# ---------------------------------------------------------------- pytorch_model.bin
def read_torch_bin(path):
    """Reads torch.save's zip format (torch_pickle.py: restricted unpickler, storages
    mapped, not read); returns OrderedDict name -> numpy array (views of the file)."""
    state = TorchArchive(path).load()
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: the pickle holds a {type(state).__name__}, expected a state dict")
    out = OrderedDict()
    for k, v in state.items():
        if not isinstance(k, str) or not isinstance(v, LazyTensor):
            raise CheckpointError(f"{path}: entry {k!r} is not a named tensor")
        out[k] = v.array()
    return out


# ---------------------------------------------------------------- folders
CHECKPOINT_FILES = {
    "safetensors": ("model.safetensors", "model.safetensors.index.json", read_safetensors),
    "bin": ("pytorch_model.bin", "pytorch_model.bin.index.json", read_torch_bin),
}


def load_state_dict(hf_dir, source="auto"):
    """Returns (OrderedDict name -> array, list of files read). source: auto|safetensors|bin;
    auto prefers safetensors, as Hugging Face and llama.cpp do."""
    kinds = ["safetensors", "bin"] if source == "auto" else [source]
    for kind in kinds:
        single, index, reader = CHECKPOINT_FILES[kind]
        if os.path.isfile(os.path.join(hf_dir, single)):
            path = os.path.join(hf_dir, single)
            return reader(path), [path]
        index_path = os.path.join(hf_dir, index)
        if os.path.isfile(index_path):
            try:
                with open(index_path, encoding="utf-8") as f:
                    weight_map = json.load(f)["weight_map"]
            except (ValueError, KeyError, TypeError) as e:
                raise CheckpointError(f"{index_path}: not a valid index ({e})") from None
            state, files = OrderedDict(), []
            for shard in sorted(set(weight_map.values())):
                if os.path.basename(shard) != shard:
                    raise CheckpointError(f"{index_path}: shard name {shard!r} must be a plain file name")
                files.append(os.path.join(hf_dir, shard))
                for k, v in reader(files[-1]).items():
                    if k in state:
                        raise CheckpointError(f"{files[-1]}: tensor {k!r} also appears in another shard")
                    state[k] = v
            return state, files
    wanted = " or ".join(CHECKPOINT_FILES[k][0] for k in kinds)
    raise CheckpointError(f"{hf_dir}: no {wanted} (nor a sharded index) found")


class GPT2Config:
    """The hyperparameters of a Hugging Face GPT2LMHeadModel config.json."""

    def __init__(self, cfg, path):
        def need(*keys):
            for k in keys:
                if k in cfg and cfg[k] is not None:
                    v = cfg[k]
                    if type(v) is not int or v <= 0:
                        raise CheckpointError(f"{path}: {k} must be a positive integer, got {v!r}")
                    return v
            raise CheckpointError(f"{path}: missing {' / '.join(keys)}")

        self.n_layer = need("n_layer", "num_hidden_layers")
        self.n_head = need("n_head", "num_attention_heads")
        self.n_embd = need("n_embd", "hidden_size")
        self.n_ctx = need("n_positions", "n_ctx", "max_position_embeddings")
        self.vocab_size = need("vocab_size")
        self.n_inner = cfg.get("n_inner") or 4 * self.n_embd
        self.eps = float(cfg.get("layer_norm_epsilon", 1e-5))
        self.activation = cfg.get("activation_function", "gelu_new")
        self.tie_word_embeddings = cfg.get("tie_word_embeddings", True)
        self.scale_attn_weights = cfg.get("scale_attn_weights", True)
        self.scale_attn_by_inverse_layer_idx = cfg.get("scale_attn_by_inverse_layer_idx", False)
        self.bos_token_id = cfg.get("bos_token_id")
        self.eos_token_id = cfg.get("eos_token_id")
        if self.n_embd % self.n_head:
            raise CheckpointError(f"{path}: n_embd={self.n_embd} is not divisible by n_head={self.n_head}")
        if self.activation not in ("gelu_new", "gelu_pytorch_tanh"):
            raise CheckpointError(f"{path}: activation_function {self.activation!r} is not supported "
                                  f"(GPT-2 uses the tanh GELU, 'gelu_new')")
        if cfg.get("add_cross_attention"):
            raise CheckpointError(f"{path}: add_cross_attention is not supported")

    @property
    def head_dim(self):
        return self.n_embd // self.n_head


def load_config(hf_dir):
    path = os.path.join(hf_dir, "config.json")
    try:
        with open(path, encoding="utf-8") as f:
            cfg = json.load(f)
    except FileNotFoundError:
        raise CheckpointError(f"{hf_dir}: no config.json") from None
    except ValueError as e:
        raise CheckpointError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(cfg, dict):
        raise CheckpointError(f"{path}: must hold a JSON object")
    archs = cfg.get("architectures") or ["GPT2LMHeadModel"]
    if cfg.get("model_type", "gpt2") != "gpt2" or not set(archs) & {"GPT2LMHeadModel", "GPT2Model"}:
        raise CheckpointError(f"{path}: architectures {archs} (model_type {cfg.get('model_type')!r}) is not "
                              f"GPT-2's language model GPT2LMHeadModel; minigpt converts GPT-2 models only")
    return GPT2Config(cfg, path)


def gpt2_shapes(c):
    """Canonical GPT-2 tensor name -> expected numpy shape (HF Conv1D weights are (in, out))."""
    shapes = OrderedDict([("wte.weight", (c.vocab_size, c.n_embd)), ("wpe.weight", (c.n_ctx, c.n_embd))])
    for i in range(c.n_layer):
        p = f"h.{i}."
        shapes.update([
            (p + "ln_1.weight", (c.n_embd,)), (p + "ln_1.bias", (c.n_embd,)),
            (p + "attn.c_attn.weight", (c.n_embd, 3 * c.n_embd)), (p + "attn.c_attn.bias", (3 * c.n_embd,)),
            (p + "attn.c_proj.weight", (c.n_embd, c.n_embd)), (p + "attn.c_proj.bias", (c.n_embd,)),
            (p + "ln_2.weight", (c.n_embd,)), (p + "ln_2.bias", (c.n_embd,)),
            (p + "mlp.c_fc.weight", (c.n_embd, c.n_inner)), (p + "mlp.c_fc.bias", (c.n_inner,)),
            (p + "mlp.c_proj.weight", (c.n_inner, c.n_embd)), (p + "mlp.c_proj.bias", (c.n_embd,)),
        ])
    shapes.update([("ln_f.weight", (c.n_embd,)), ("ln_f.bias", (c.n_embd,))])
    return shapes


def load_gpt2(hf_dir, source="auto", file=None):
    """Returns (GPT2Config, OrderedDict canonical name -> array, files read).
    file: read the tensors from this one checkpoint file instead of the folder's.

    Canonical names drop the "transformer." prefix; the attention-mask buffers
    (attn.bias, attn.masked_bias) are skipped. "lm_head.weight" is present only
    when the checkpoint stores one that differs from wte (an untied head)."""
    config = load_config(hf_dir)
    if file is None:
        state, files = load_state_dict(hf_dir, source)
    else:
        with open(file, "rb") as f:
            is_zip = f.read(4) == b"PK\x03\x04"
        state, files = (read_torch_bin(file) if is_zip else read_safetensors(file)), [file]
    shapes = gpt2_shapes(config)
    out, where = OrderedDict(), ", ".join(files)
    for name, arr in state.items():
        canon = name[len("transformer."):] if name.startswith("transformer.") else name
        if canon.endswith((".attn.bias", ".attn.masked_bias")):
            continue
        if canon == "lm_head.weight":
            if arr.shape != (config.vocab_size, config.n_embd):
                raise CheckpointError(f"{where}: lm_head.weight has shape {arr.shape}, expected "
                                      f"{(config.vocab_size, config.n_embd)}")
        elif canon not in shapes:
            raise CheckpointError(f"{where}: unexpected tensor {name!r} for a GPT-2 model "
                                  f"with {config.n_layer} layers")
        elif arr.shape != shapes[canon]:
            raise CheckpointError(f"{where}: tensor {name!r} has shape {arr.shape}, expected {shapes[canon]} "
                                  f"from config.json")
        if canon in out:
            raise CheckpointError(f"{where}: tensor {canon!r} appears twice (with and without 'transformer.')")
        if arr.dtype.kind != "f":
            raise CheckpointError(f"{where}: tensor {name!r} has dtype {arr.dtype}, expected floating point")
        out[canon] = arr
    missing = [k for k in shapes if k not in out]
    if missing:
        raise CheckpointError(f"{where}: missing tensors {missing[:5]}{' ...' if len(missing) > 5 else ''}")
    if "lm_head.weight" in out and np.array_equal(out["lm_head.weight"], out["wte.weight"]):
        del out["lm_head.weight"]  # tied: the head is the embedding matrix
    ordered = OrderedDict((k, out[k]) for k in shapes)
    if "lm_head.weight" in out:
        ordered["lm_head.weight"] = out["lm_head.weight"]
    return config, ordered, files


def main():
    ap = argparse.ArgumentParser(description="List the tensors of a Hugging Face checkpoint folder.")
    ap.add_argument("hf_dir")
    ap.add_argument("--source", choices=["auto", "safetensors", "bin"], default="auto")
    args = ap.parse_args()
    try:
        state, files = load_state_dict(args.hf_dir, args.source)
    except (CheckpointError, OSError) as e:
        print(f"hf_checkpoint.py: error: {e}", file=sys.stderr)
        return 1
    print("read", ", ".join(files))
    for k, v in state.items():
        print(f"  {k:40s} {str(v.dtype):8s} {tuple(v.shape)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
