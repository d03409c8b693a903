#!/usr/bin/env python3
"""Reads a minigpt attention file (minigpt ... --attention FILE) with numpy.

  from read_attention import read_attention, load_attention
  w = read_attention("attn.bin")          # (n_layer, n_head, T, T) float32, zero above the diagonal
  a = load_attention("attn.bin")          # a.weights, a.ids (T,) int32, a.dtype ("f16"/"f32"), a.blocks

The format (docs/attention-format.md), little-endian:
  header, 48 bytes: magic b"MGPTATTN", u32 version (1), u32 dtype (0 f32, 1 f16),
                    u32 n_layer, u32 n_head, u64 n_tokens, u64 n_blocks, u64 ids_offset
  n_blocks blocks:  u64 pos0, u64 n_rows, then for each layer, for each head, rows
                    pos0..pos0+n_rows-1 of the lower triangle (row p: p+1 weights)
  ids:              int32[n_tokens] at ids_offset (the end of the file)
Rows p0..p1-1 of a row-major packed lower triangle are one contiguous run
[p0(p0+1)/2, p1(p1+1)/2), so each block is copied with one slice per head.

Command line: read_attention.py FILE [--layer L --head H] [--npy OUT.npy]
prints a summary (and one head's matrix); --npy saves the full array.
"""
import argparse
import collections
import struct
import sys

import numpy as np

MAGIC = b"MGPTATTN"
VERSION = 1
HEADER = struct.Struct("<8sIIIIQQQ")  # 48 bytes
DTYPES = {0: ("f32", np.dtype("<f4")), 1: ("f16", np.dtype("<f2"))}

Attention = collections.namedtuple("Attention", "weights ids dtype blocks")


class AttentionFormatError(ValueError):
    pass


def _tri(k):
    return k * (k + 1) // 2


def load_attention(path):
    """Reads and validates the whole file; returns Attention(weights (L, H, T, T) float32,
    ids (T,) int32, dtype name, blocks [(pos0, n_rows), ...])."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < HEADER.size:
        raise AttentionFormatError(f"{path}: {len(data)} bytes, shorter than the {HEADER.size}-byte header")
    magic, version, dtype_code, n_layer, n_head, n_tokens, n_blocks, ids_offset = HEADER.unpack_from(data, 0)
    if magic != MAGIC:
        raise AttentionFormatError(f"{path}: magic {magic!r}, expected {MAGIC!r} (not a minigpt attention file)")
    if version != VERSION:
        raise AttentionFormatError(f"{path}: version {version}, this reader knows {VERSION}")
    if dtype_code not in DTYPES:
        raise AttentionFormatError(f"{path}: dtype {dtype_code}, expected 0 (f32) or 1 (f16)")
    dtype_name, dtype = DTYPES[dtype_code]
    packed = np.zeros((n_layer, n_head, _tri(n_tokens)), dtype=np.float32)
    at, pos, blocks = HEADER.size, 0, []
    for k in range(n_blocks):
        if at + 16 > len(data):
            raise AttentionFormatError(f"{path}: offset {at}: block {k} header past the end of the file")
        pos0, rows = struct.unpack_from("<QQ", data, at)
        if pos0 != pos or rows == 0 or pos0 + rows > n_tokens:
            raise AttentionFormatError(f"{path}: offset {at}: block {k} covers {pos0}+{rows}, expected to start at "
                                       f"{pos} within {n_tokens} tokens")
        seg = _tri(pos0 + rows) - _tri(pos0)
        count = n_layer * n_head * seg
        end = at + 16 + count * dtype.itemsize
        if end > len(data):
            raise AttentionFormatError(f"{path}: offset {at}: block {k} data past the end of the file")
        values = np.frombuffer(data, dtype=dtype, count=count, offset=at + 16).reshape(n_layer, n_head, seg)
        packed[:, :, _tri(pos0):_tri(pos0 + rows)] = values
        blocks.append((pos0, rows))
        at, pos = end, pos + rows
    if pos != n_tokens:
        raise AttentionFormatError(f"{path}: blocks cover {pos} of {n_tokens} positions")
    if ids_offset != at or at + 4 * n_tokens != len(data):
        raise AttentionFormatError(f"{path}: token ids at {ids_offset} in a file of {len(data)} bytes, expected at {at} "
                                   f"with size {at + 4 * n_tokens}")
    ids = np.frombuffer(data, dtype="<i4", count=n_tokens, offset=at).copy()
    weights = np.zeros((n_layer, n_head, n_tokens, n_tokens), dtype=np.float32)
    rows_idx, cols_idx = np.tril_indices(n_tokens)  # row-major: the packing order
    weights[:, :, rows_idx, cols_idx] = packed
    return Attention(weights, ids, dtype_name, blocks)


def read_attention(path):
    """(n_layer, n_head, T, T) float32 attention weights; row i is query position i."""
    return load_attention(path).weights


def main(argv=None):
    ap = argparse.ArgumentParser(description="Summarise or convert a minigpt attention file.")
    ap.add_argument("file")
    ap.add_argument("--layer", type=int)
    ap.add_argument("--head", type=int)
    ap.add_argument("--npy", metavar="OUT.npy", help="save the (n_layer, n_head, T, T) float32 array")
    args = ap.parse_args(argv)
    try:
        a = load_attention(args.file)
    except (OSError, AttentionFormatError) as e:
        print(f"read_attention.py: error: {e}", file=sys.stderr)
        return 1
    L, H, T, _ = a.weights.shape
    sums = a.weights.sum(axis=-1)
    print(f"{args.file}: {L} layers x {H} heads, {T} tokens, {a.dtype}, {len(a.blocks)} blocks "
          f"(first block {a.blocks[0][1] if a.blocks else 0} rows)")
    print(f"ids: {' '.join(str(int(i)) for i in a.ids[:32])}{' ...' if T > 32 else ''}")
    print(f"row sums: min {sums.min():.6f} max {sums.max():.6f}")
    if args.layer is not None and args.head is not None:
        np.set_printoptions(precision=3, suppress=True, linewidth=160)
        print(f"layer {args.layer} head {args.head}:")
        print(a.weights[args.layer, args.head])
    if args.npy:
        from atomic_file import atomic_open
        with atomic_open(args.npy) as f:
            np.save(f, a.weights)
    return 0


if __name__ == "__main__":
    sys.exit(main())
