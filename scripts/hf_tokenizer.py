#!/usr/bin/env python3
"""Reads the tokenizer files of a Hugging Face folder into llama.cpp's GGUF vocabulary arrays.

GPT-2 byte-level BPE: vocab.json + merges.txt (or a fast-tokenizer tokenizer.json).
  tokens are the byte-to-unicode strings in id order; "<|endoftext|>" (and any
  special added token) is CONTROL, everything else NORMAL; ids the embedding has
  but the vocabulary lacks become "[PAD{id}]" UNUSED, as llama.cpp's converter does.
SentencePiece: tokenizer.model, a serialized ModelProto, parsed by a small
  protobuf reader (no sentencepiece module):
    ModelProto     1: repeated SentencePiece pieces, 2: TrainerSpec, 3: NormalizerSpec
    SentencePiece  1: piece (string), 2: score (float), 3: type (enum)
    TrainerSpec    3: model_type, 40: unk_id, 41: bos_id, 42: eos_id, 43: pad_id
    NormalizerSpec 3: add_dummy_prefix (bool)
  Piece types map one to one to llama.cpp token types (1 normal, 2 unknown,
  3 control, 4 user defined, 5 unused, 6 byte).

Run as a script it summarises a folder's tokenizer:  hf_tokenizer.py HF_DIR
"""
import argparse
import json
import os
import struct
import sys

TOKEN_NORMAL, TOKEN_UNKNOWN, TOKEN_CONTROL, TOKEN_USER_DEFINED, TOKEN_UNUSED, TOKEN_BYTE = 1, 2, 3, 4, 5, 6
GPT2_EOT = "<|endoftext|>"


class TokenizerError(Exception):
    """A tokenizer file is missing or malformed."""


def bytes_to_unicode():
    """GPT-2's reversible byte -> printable unicode character table (openai/gpt-2 encoder.py)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs)))


# ---------------------------------------------------------------- GPT-2 BPE
def _read_json(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except ValueError as e:
        raise TokenizerError(f"{path}: not valid JSON ({e})") from None


def _special_tokens(hf_dir):
    """Added tokens marked special in tokenizer_config.json, plus GPT-2's end-of-text."""
    special = {GPT2_EOT}
    path = os.path.join(hf_dir, "tokenizer_config.json")
    if os.path.isfile(path):
        cfg = _read_json(path)
        for info in (cfg.get("added_tokens_decoder") or {}).values():
            if isinstance(info, dict) and info.get("special") and isinstance(info.get("content"), str):
                special.add(info["content"])
    return special


def load_gpt2_bpe(hf_dir, n_vocab):
    """Returns dict(tokens, token_types, merges, eot_id) for an embedding of n_vocab rows."""
    vocab_path, merges_path = os.path.join(hf_dir, "vocab.json"), os.path.join(hf_dir, "merges.txt")
    special = _special_tokens(hf_dir)
    if os.path.isfile(vocab_path) and os.path.isfile(merges_path):
        vocab = _read_json(vocab_path)
        with open(merges_path, encoding="utf-8") as f:
            lines = f.read().split("\n")
        if lines and lines[0].startswith("#version"):
            lines = lines[1:]
        merges, src = [], vocab_path
        for i, line in enumerate(lines):
            if not line:
                continue
            if len(line.split(" ")) != 2:
                raise TokenizerError(f"{merges_path}: line {i + 1}: expected two tokens separated by a space, got {line!r}")
            merges.append(line)
    else:
        tj_path = os.path.join(hf_dir, "tokenizer.json")
        tj = _read_json(tj_path)
        model = tj.get("model") or {}
        if model.get("type") != "BPE":
            raise TokenizerError(f"{tj_path}: model type {model.get('type')!r} is not BPE")
        vocab, src = dict(model.get("vocab") or {}), tj_path
        merges = [m if isinstance(m, str) else " ".join(m) for m in model.get("merges") or []]
        for added in tj.get("added_tokens") or []:
            vocab[added["content"]] = added["id"]
            if added.get("special"):
                special.add(added["content"])
    if not isinstance(vocab, dict):
        raise TokenizerError(f"{src}: the vocabulary must be a JSON object token -> id")
    by_id = {}
    for tok, i in vocab.items():
        if type(i) is not int or not 0 <= i < n_vocab:
            raise TokenizerError(f"{src}: token {tok!r} has id {i!r}, outside the model's {n_vocab} embeddings")
        if i in by_id:
            raise TokenizerError(f"{src}: tokens {by_id[i]!r} and {tok!r} share id {i}")
        by_id[i] = tok
    tokens, types = [], []
    for i in range(n_vocab):
        if i in by_id:
            tokens.append(by_id[i])
            types.append(TOKEN_CONTROL if by_id[i] in special else TOKEN_NORMAL)
        else:
            tokens.append(f"[PAD{i}]")
            types.append(TOKEN_UNUSED)
    eot = vocab.get(GPT2_EOT)
    return {"tokens": tokens, "token_types": types, "merges": merges, "eot_id": eot}


# ---------------------------------------------------------------- SentencePiece
def _varint(buf, pos, where):
    value, shift = 0, 0
    while True:
        if pos >= len(buf):
            raise TokenizerError(f"{where}: truncated varint at byte {pos}")
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise TokenizerError(f"{where}: varint longer than 10 bytes at byte {pos}")


def _proto_fields(buf, where):
    """Yields (field_number, wire_type, value): int for varints, bytes otherwise."""
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos, where)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos, where)
        elif wire in (1, 5):
            n = 8 if wire == 1 else 4
            if pos + n > len(buf):
                raise TokenizerError(f"{where}: truncated fixed{n * 8} field {field}")
            value, pos = buf[pos:pos + n], pos + n
        elif wire == 2:
            n, pos = _varint(buf, pos, where)
            if pos + n > len(buf):
                raise TokenizerError(f"{where}: field {field} claims {n} bytes, {len(buf) - pos} left")
            value, pos = buf[pos:pos + n], pos + n
        else:
            raise TokenizerError(f"{where}: unsupported protobuf wire type {wire} (field {field})")
        yield field, wire, value


def _int32(v):
    """Protobuf int32 fields carry negatives as 64-bit two's complement varints."""
    v &= 0xFFFFFFFFFFFFFFFF
    return v - (1 << 64) if v >= 1 << 63 else v


def parse_sentencepiece(data, where="tokenizer.model"):
    """Returns dict(pieces=[(piece, score, type)], unk_id, bos_id, eos_id, pad_id,
    model_type, add_dummy_prefix) with SentencePiece's defaults for absent fields."""
    out = {"pieces": [], "unk_id": 0, "bos_id": 1, "eos_id": 2, "pad_id": -1,
           "model_type": 1, "add_dummy_prefix": True}
    for field, wire, value in _proto_fields(data, where):
        if field == 1 and wire == 2:
            piece, score, ptype = None, 0.0, TOKEN_NORMAL
            for f, w, v in _proto_fields(value, where):
                if f == 1 and w == 2:
                    try:
                        piece = v.decode("utf-8")
                    except UnicodeDecodeError:
                        raise TokenizerError(f"{where}: piece {len(out['pieces'])} is not valid UTF-8") from None
                elif f == 2 and w == 5:
                    (score,) = struct.unpack("<f", v)
                elif f == 3 and w == 0:
                    ptype = v
            if piece is None:
                raise TokenizerError(f"{where}: piece {len(out['pieces'])} has no text")
            if not 1 <= ptype <= 6:
                raise TokenizerError(f"{where}: piece {piece!r} has unknown type {ptype}")
            out["pieces"].append((piece, score, ptype))
        elif field == 2 and wire == 2:
            names = {3: "model_type", 40: "unk_id", 41: "bos_id", 42: "eos_id", 43: "pad_id"}
            for f, w, v in _proto_fields(value, where):
                if f in names and w == 0:
                    out[names[f]] = _int32(v)
        elif field == 3 and wire == 2:
            for f, w, v in _proto_fields(value, where):
                if f == 3 and w == 0:
                    out["add_dummy_prefix"] = bool(v)
    if not out["pieces"]:
        raise TokenizerError(f"{where}: no pieces (is this a SentencePiece model?)")
    return out


def load_sentencepiece(hf_dir, n_vocab):
    """Returns dict(tokens, scores, token_types, proto, unk/bos/eos/pad ids, add_dummy_prefix)."""
    path = os.path.join(hf_dir, "tokenizer.model")
    with open(path, "rb") as f:
        proto = f.read()
    spm = parse_sentencepiece(proto, path)
    pieces = spm["pieces"]
    if len(pieces) > n_vocab:
        raise TokenizerError(f"{path}: {len(pieces)} pieces but the model has only {n_vocab} embeddings")
    tokens = [p for p, _, _ in pieces] + [f"[PAD{i}]" for i in range(len(pieces), n_vocab)]
    scores = [s for _, s, _ in pieces] + [-1000.0] * (n_vocab - len(pieces))
    types = [t for _, _, t in pieces] + [TOKEN_UNUSED] * (n_vocab - len(pieces))
    ids = {k: (spm[k] if 0 <= spm[k] < len(pieces) else None) for k in ("unk_id", "bos_id", "eos_id", "pad_id")}
    return dict(tokens=tokens, scores=scores, token_types=types, proto=proto,
                add_dummy_prefix=spm["add_dummy_prefix"], **ids)


def detect(hf_dir, choice="auto"):
    """Which tokenizer the folder holds: 'gpt2' or 'spm'. choice: auto|gpt2|spm."""
    has_bpe = (os.path.isfile(os.path.join(hf_dir, "vocab.json")) and os.path.isfile(os.path.join(hf_dir, "merges.txt"))) \
        or os.path.isfile(os.path.join(hf_dir, "tokenizer.json"))
    has_spm = os.path.isfile(os.path.join(hf_dir, "tokenizer.model"))
    if choice == "gpt2" and not has_bpe:
        raise TokenizerError(f"{hf_dir}: no vocab.json + merges.txt (or tokenizer.json)")
    if choice == "spm" and not has_spm:
        raise TokenizerError(f"{hf_dir}: no tokenizer.model")
    if choice != "auto":
        return choice
    if has_bpe and has_spm:
        raise TokenizerError(f"{hf_dir}: has both a GPT-2 BPE vocabulary and tokenizer.model; "
                             f"choose one with --tokenizer gpt2|spm")
    if not has_bpe and not has_spm:
        raise TokenizerError(f"{hf_dir}: no tokenizer found (vocab.json + merges.txt, tokenizer.json or tokenizer.model)")
    return "gpt2" if has_bpe else "spm"


def main():
    ap = argparse.ArgumentParser(description="Summarise the tokenizer of a Hugging Face folder as the converter reads it.")
    ap.add_argument("hf_dir")
    ap.add_argument("--n-vocab", type=int, default=None, help="embedding rows (default: number of tokens)")
    args = ap.parse_args()
    try:
        kind = detect(args.hf_dir)
        if kind == "gpt2":
            n = args.n_vocab or len(_read_json(os.path.join(args.hf_dir, "vocab.json")))
            t = load_gpt2_bpe(args.hf_dir, n)
            print(f"gpt2 BPE: {len(t['tokens'])} tokens, {len(t['merges'])} merges, eot id {t['eot_id']}")
        else:
            with open(os.path.join(args.hf_dir, "tokenizer.model"), "rb") as f:
                n = args.n_vocab or len(parse_sentencepiece(f.read())["pieces"])
            t = load_sentencepiece(args.hf_dir, n)
            print(f"SentencePiece: {len(t['tokens'])} tokens, unk {t['unk_id']} bos {t['bos_id']} "
                  f"eos {t['eos_id']} pad {t['pad_id']}, add_dummy_prefix {t['add_dummy_prefix']}")
    except (TokenizerError, OSError) as e:
        print(f"hf_tokenizer.py: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
