#!/usr/bin/env python3
"""nanoGPT's character-level vocabulary (meta.pkl) as a GGUF SentencePiece vocabulary.

meta.pkl, as nanoGPT's data/shakespeare_char/prepare.py writes it: a pickle of
  {"vocab_size": n, "itos": {id: char}, "stoi": {char: id}}
with ids 0..n-1 (prepare.py sorts the characters of the training text). It holds
no classes, so it is read by an unpickler that refuses every global.

How it is written (both minigpt and llama.cpp load it):
  tokenizer.ggml.model = "llama" (SentencePiece), one token per character, space
  written as SentencePiece's visible space U+2581, every token NORMAL with score 0
  (no token is two characters long, so neither engine ever merges), no BOS/EOS,
  add_space_prefix = false; and tokenizer.sentencepiece.model_proto, a ModelProto
  of model_type CHAR with the identity normalizer (no dummy prefix, whitespace
  kept as is), which libsentencepiece (minigpt's tokenizer) loads.
SentencePiece needs exactly one UNKNOWN piece and the vocabulary has none to
spare (the embedding has one row per character). So one character stands for
unknown input too: the first punctuation character of the vocabulary (by id;
the last character if there is none), marked UNKNOWN in the ModelProto with
unk_surface set to the character itself, so it still encodes and decodes as
itself. Characters outside the vocabulary encode to it; nanoGPT's own encode()
would raise KeyError on them.
llama.cpp loads the file but has no such fallback: its SentencePiece tokenizer
looks a character outside the vocabulary up as a byte token, finds none and
throws std::out_of_range (the process aborts). node-llama-cpp tokenizes
"some test text here" while it loads a model, so a vocabulary missing one of
those letters cannot be loaded there at all (shakespeare_char's 65 characters can).
"""
import pickle
import struct

SPACE = "\u2581"  # SentencePiece's visible space
# ModelProto.SentencePiece.Type and TrainerSpec.ModelType values (sentencepiece_model.proto)
PIECE_NORMAL, PIECE_UNKNOWN = 1, 2
MODEL_TYPE_CHAR = 4


class VocabError(Exception):
    """meta.pkl is missing, malformed or not a character vocabulary."""


class _NoGlobals(pickle.Unpickler):
    def __init__(self, f, path):
        super().__init__(f)
        self.path = path

    def find_class(self, module, name):
        raise VocabError(f"{self.path}: refusing to load global '{module}.{name}' from the pickle "
                         f"(meta.pkl holds only dicts of characters and ids)")


def load_meta(path):
    """Returns the characters in id order, checked: stoi and itos agree, ids are
    0..n-1, every entry is one character that SentencePiece can hold."""
    try:
        with open(path, "rb") as f:
            meta = _NoGlobals(f, path).load()
    except VocabError:
        raise
    except OSError as e:
        raise VocabError(f"{path}: cannot read: {e.strerror}") from None
    except Exception as e:  # a malformed pickle stream
        raise VocabError(f"{path}: cannot unpickle: {type(e).__name__}: {e}") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("stoi"), dict) or not isinstance(meta.get("itos"), dict):
        raise VocabError(f"{path}: expected a dict with 'stoi' and 'itos' dicts (nanoGPT's meta.pkl)")
    stoi, itos = meta["stoi"], meta["itos"]
    n = len(stoi)
    if n == 0 or len(itos) != n or meta.get("vocab_size", n) != n:
        raise VocabError(f"{path}: stoi has {len(stoi)} entries, itos {len(itos)}, vocab_size "
                         f"{meta.get('vocab_size')!r}: they must agree")
    chars = [None] * n
    for ch, i in stoi.items():
        if type(i) is not int or not 0 <= i < n:
            raise VocabError(f"{path}: stoi[{ch!r}] = {i!r} is not an id in 0..{n - 1}")
        if not isinstance(ch, str) or len(ch) != 1:
            raise VocabError(f"{path}: token {ch!r} is not a single character (only character-level "
                             f"vocabularies, as nanoGPT's prepare.py writes them, are supported)")
        if ch in ("\0", SPACE):
            raise VocabError(f"{path}: character {ch!r} cannot be a SentencePiece piece")
        if chars[i] is not None or itos.get(i) != ch:
            raise VocabError(f"{path}: stoi and itos disagree at id {i}")
        chars[i] = ch
    return chars


def unknown_id(chars):
    """The character that also stands for unknown input (see the module doc)."""
    for i, ch in enumerate(chars):
        if not ch.isalnum() and not ch.isspace() and ch.isprintable():
            return i
    return len(chars) - 1


LLAMA_CPP_PROBE = "some test text here\n"  # what node-llama-cpp tokenizes when it loads a model


def llama_cpp_missing(chars):
    """Characters node-llama-cpp needs at load time that the vocabulary lacks (see above)."""
    return sorted(set(LLAMA_CPP_PROBE) - set(chars))


def token_text(ch):
    return SPACE if ch == " " else ch


# ---------------------------------------------------------------- protobuf writing
def _varint(v):
    v &= (1 << 64) - 1  # negative int32 values are 10-byte two's complement varints
    out = bytearray()
    while True:
        b, v = v & 0x7F, v >> 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _field(number, value):
    """int -> varint field, float -> fixed32 field, bytes/str -> length-delimited field."""
    if isinstance(value, bool) or isinstance(value, int):
        return _varint(number << 3) + _varint(int(value))
    if isinstance(value, float):
        return _varint(number << 3 | 5) + struct.pack("<f", value)
    data = value.encode("utf-8") if isinstance(value, str) else value
    return _varint(number << 3 | 2) + _varint(len(data)) + data


def sentencepiece_proto(chars):
    """The serialized ModelProto: pieces (1), TrainerSpec (2), NormalizerSpec (3)."""
    unk = unknown_id(chars)
    out = b""
    for i, ch in enumerate(chars):
        piece = _field(1, token_text(ch)) + _field(2, 0.0) + _field(3, PIECE_UNKNOWN if i == unk else PIECE_NORMAL)
        out += _field(1, piece)
    trainer = (_field(3, MODEL_TYPE_CHAR) + _field(4, len(chars)) + _field(40, unk) + _field(41, -1)
               + _field(42, -1) + _field(43, -1) + _field(44, chars[unk]))  # unk_id, bos, eos, pad, unk_surface
    normalizer = (_field(1, "identity") + _field(3, False) + _field(4, False)  # name, add_dummy_prefix,
                  + _field(5, True))                                           # remove_extra_ws, escape_ws
    return out + _field(2, trainer) + _field(3, normalizer)
