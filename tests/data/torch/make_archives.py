#!/usr/bin/env python3
"""Writes the small torch.save archives that tests/unit/test_torch_archive.cpp reads,
and beside each NAME.pt a NAME.json saying what torch itself makes of it (torch.load),
so the C++ reader is compared with torch, not with itself.

Run with Debian's python3 (torch and numpy from apt):
    /usr/bin/python3 tests/data/torch/make_archives.py

NAME.json: {"entries": {PATH: {...}}} with one entry per value of the loaded object,
PATH the keys and indices from the top joined by "/" ("" for the top itself):
  {"type": "dict"|"list"|"tuple", "len": N}
  {"type": "int"|"float"|"str"|"bool"|"none", "value": V}
  {"type": "tensor", "dtype": "float32", "shape": [...], "stride": [...],
   "storage_offset": N, "storage_key": K, "samples": [[[i, j, ...], value], ...]}
or {"error": TEXT} for an archive torch refuses with weights_only (the forbidden global).
"""
import io
import json
import os
import pathlib
import struct
import zipfile
from collections import OrderedDict

import numpy as np
import torch
import torch.nn as nn

HERE = pathlib.Path(__file__).resolve().parent


# --- a nanoGPT-shaped model (model.py's names; LayerNorm with an optional bias) ---
class LayerNorm(nn.Module):
    def __init__(self, n, bias):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(n))
        self.bias = nn.Parameter(torch.zeros(n)) if bias else None


class Block(nn.Module):
    def __init__(self, e, bias):
        super().__init__()
        self.ln_1 = LayerNorm(e, bias)
        self.attn = nn.Module()
        self.attn.c_attn = nn.Linear(e, 3 * e, bias=bias)
        self.attn.c_proj = nn.Linear(e, e, bias=bias)
        self.ln_2 = LayerNorm(e, bias)
        self.mlp = nn.Module()
        self.mlp.c_fc = nn.Linear(e, 4 * e, bias=bias)
        self.mlp.c_proj = nn.Linear(4 * e, e, bias=bias)


class GPT(nn.Module):
    def __init__(self, a):
        super().__init__()
        e = a["n_embd"]
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(a["vocab_size"], e), wpe=nn.Embedding(a["block_size"], e),
            h=nn.ModuleList([Block(e, a["bias"]) for _ in range(a["n_layer"])]), ln_f=LayerNorm(e, a["bias"])))
        self.lm_head = nn.Linear(e, a["vocab_size"], bias=False)
        self.transformer.wte.weight = self.lm_head.weight  # tied, as nanoGPT does: one storage


class Evil:
    def __reduce__(self):
        return (os.system, ("echo this checkpoint runs code",))


# --- the JSON sidecar: torch's own view of what it loaded ---
def describe(obj, path, out, keys):
    if isinstance(obj, torch.Tensor):
        t = obj.detach()
        idxs = [()] if t.dim() == 0 else []
        if t.numel() > 0 and t.dim() > 0:
            g = torch.Generator().manual_seed(len(out))
            idxs = [tuple(0 for _ in t.shape), tuple(d - 1 for d in t.shape)]
            idxs += [tuple(int(torch.randint(d, (1,), generator=g)) for d in t.shape) for _ in range(3)]
        samples = [[list(i), t[i].item() if t.dtype != torch.bool else bool(t[i].item())] for i in idxs]
        key = t.untyped_storage().data_ptr() if hasattr(t, "untyped_storage") else t.storage().data_ptr()
        out[path] = {"type": "tensor", "dtype": str(t.dtype).replace("torch.", ""), "shape": list(t.shape),
                     "stride": list(t.stride()), "storage_offset": t.storage_offset(),
                     "storage_key": keys.setdefault(key, len(keys)), "samples": samples}
    elif isinstance(obj, dict):
        out[path] = {"type": "dict", "len": len(obj)}
        for k, v in obj.items():
            describe(v, f"{path}/{k}" if path else str(k), out, keys)
    elif isinstance(obj, (list, tuple)):
        out[path] = {"type": "list" if isinstance(obj, list) else "tuple", "len": len(obj)}
        for i, v in enumerate(obj):
            describe(v, f"{path}/{i}" if path else str(i), out, keys)
    elif obj is None:
        out[path] = {"type": "none", "value": None}
    elif isinstance(obj, (bool, np.bool_)):
        out[path] = {"type": "bool", "value": bool(obj)}
    elif isinstance(obj, (int, np.integer)):
        out[path] = {"type": "int", "value": int(obj)}
    elif isinstance(obj, (float, np.floating)):
        out[path] = {"type": "float", "value": float(obj)}
    elif isinstance(obj, str):
        out[path] = {"type": "str", "value": obj}
    else:
        raise TypeError(f"{path}: {type(obj)}")


def save(name, obj):
    path = HERE / f"{name}.pt"
    torch.save(obj, path)
    write_sidecar(name)


def write_sidecar(name, error=None):
    path = HERE / f"{name}.pt"
    if error is None:
        out = {}
        describe(torch.load(path), "", out, {})
        side = {"entries": out}
    else:
        side = {"error": error}
    (HERE / f"{name}.json").write_text(json.dumps(side, indent=1, ensure_ascii=False) + "\n")
    print(f"{path.name}: {path.stat().st_size} bytes")


def rezip(src, dst, edit):
    """Copies archive src to dst (stored entries), edit(name, data) -> data or None to drop."""
    with zipfile.ZipFile(HERE / src) as zin, zipfile.ZipFile(HERE / dst, "w", zipfile.ZIP_STORED) as zout:
        for info in zin.infolist():
            data = edit(info.filename, zin.read(info))
            if data is not None:
                zout.writestr(info.filename, data)
        return zin.namelist()


def write_zip64(src, dst):
    """src's entries again as a ZIP64 archive, as torch's writer (miniz) makes for big files:
    local and central sizes and offsets 0xFFFFFFFF with a zip64 extra field, a zip64
    end-of-central-directory record and locator, the classic record's fields saturated."""
    with zipfile.ZipFile(HERE / src) as zin:
        entries = [(i.filename.encode(), zin.read(i), i.CRC) for i in zin.infolist()]
    out, central = bytearray(), bytearray()
    for name, data, crc in entries:
        off = len(out)
        extra = struct.pack("<HHQQ", 1, 16, len(data), len(data))
        pad = (-(len(out) + 30 + len(name) + len(extra) + 4)) % 64  # 64-byte aligned data, as torch
        extra += struct.pack("<HH", 0xCAFE, pad) + b"\0" * pad
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, 45, 0, 0, 0, 0, crc, 0xFFFFFFFF, 0xFFFFFFFF,
                           len(name), len(extra)) + name + extra + data
        cextra = struct.pack("<HHQQQ", 1, 24, len(data), len(data), off)
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 45, 45, 0, 0, 0, 0, crc, 0xFFFFFFFF,
                               0xFFFFFFFF, len(name), len(cextra), 0, 0, 0, 0, 0xFFFFFFFF) + name + cextra
    cd_off = len(out)
    out += central
    z64 = len(out)
    out += struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0, len(entries), len(entries), len(central), cd_off)
    out += struct.pack("<IIQI", 0x07064B50, 0, z64, 1)
    out += struct.pack("<IHHHHIIH", 0x06054B50, 0xFFFF, 0xFFFF, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)
    (HERE / dst).write_bytes(bytes(out))


def main():
    torch.manual_seed(1234)
    model_args = dict(n_layer=2, n_head=2, n_embd=8, block_size=16, bias=False, vocab_size=64, dropout=0.0)
    model = GPT(model_args)
    opt = torch.optim.AdamW(model.parameters(), lr=6e-4, betas=(0.9, 0.95), weight_decay=0.1)
    x = torch.randint(64, (2, 5))
    loss = model.lm_head(model.transformer.wte(x) + model.transformer.wpe(torch.arange(5))).logsumexp(-1).mean()
    loss.backward()
    opt.step()
    sd = model.state_dict()  # an OrderedDict with _metadata (pickled with BUILD)
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    sd["_orig_mod.extra.transposed"] = base.t()  # stride (1, 6): not contiguous
    sd["extra.rows"] = base[1:3]  # storage_offset 6 of the same storage
    config = {"out_dir": "out-tiny", "eval_interval": 2000, "learning_rate": 6e-4, "always_save_checkpoint": True,
              "init_from": "scratch", "compile": False, "dropout": 0.0, "beta2": np.float64(0.95),
              "grad_accum": np.int64(-40), "scale": np.float32(1.5), "half": np.float16(0.333),
              "flag": np.bool_(True), "small": np.uint8(200), "nothing": None, "betas": (0.9, 0.95),
              "big": 2 ** 40, "neg": -3, "unicode": "h\u00e9llo \u2713 \U0001F600", "long_int": -(2 ** 62)}
    ckpt = {"model": sd, "optimizer": opt.state_dict(), "model_args": model_args, "iter_num": 5000,
            "best_val_loss": torch.tensor(1.4697), "config": config}
    save("nanogpt", ckpt)

    g = torch.Generator().manual_seed(7)
    w = torch.randn(5, 3, generator=g)
    save("bf16", OrderedDict([("h.0.w", w.bfloat16()), ("h.0.wt", w.t().bfloat16()),
                              ("p", nn.Parameter(torch.randn(4, generator=g).bfloat16())),
                              ("ids", torch.tensor([3, -1, 2 ** 40], dtype=torch.int64)),
                              ("mask", torch.tensor([True, False])), ("empty", torch.zeros(0, 3))]))
    save("f16", {"wte.weight": torch.randn(6, 4, generator=g).half(), "b": torch.randn(3, generator=g).half()[1:],
                 "scalar": torch.tensor(2.5, dtype=torch.float16), "d": torch.randn(2, 2, generator=g).double()})

    torch.save({"x": Evil()}, HERE / "forbidden.pt")
    write_sidecar("forbidden", error="refusing to load global 'posix.system'")

    # Edited copies of f16.pt: a storage dropped, a big-endian byteorder, the same as ZIP64.
    names = rezip("f16.pt", "missing_storage.pt", lambda n, d: None if n.endswith("/data/0") else d)
    prefix = names[0].split("/")[0]
    rezip("f16.pt", "bigendian.pt", lambda n, d: b"big" if n.endswith("/byteorder") else d)
    with zipfile.ZipFile(HERE / "bigendian.pt", "a") as z:
        if f"{prefix}/byteorder" not in z.namelist():
            z.writestr(f"{prefix}/byteorder", b"big")
    write_zip64("f16.pt", "zip64.pt")
    write_sidecar("zip64")


if __name__ == "__main__":
    main()
