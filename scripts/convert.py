#!/usr/bin/env python3
"""Converts a GPT-2 checkpoint into a GGUF v3 file, as llama.cpp's convert_hf_to_gguf.py
does for GPT2LMHeadModel (numpy only: no torch, no transformers).

  convert.py SRC OUT.gguf [--outtype f32|f16|q8_0]

SRC, recognised by what it is and its first bytes:
  a folder         Hugging Face: config.json; model.safetensors or pytorch_model.bin (or
                   sharded, *.index.json); a tokenizer: vocab.json + merges.txt or
                   tokenizer.json (GPT-2 BPE), or a SentencePiece tokenizer.model
  a torch zip      nanoGPT's ckpt.pt (nanogpt_checkpoint.py); the tokenizer is meta.pkl's
  ("PK\\3\\4")       characters when there is one (--meta, else next to ckpt.pt or in
                   data/DATASET/ as nanoGPT's sample.py finds it), GPT-2 BPE otherwise.
                   A pytorch_model.bin inside a Hugging Face folder converts that folder.
  an llm.c .bin    magic 20240326 (llmc_checkpoint.py); GPT-2 BPE
  .safetensors     the Hugging Face folder it sits in, read from that file
  config.json      the Hugging Face folder it sits in
GPT-2 BPE for nanoGPT and llm.c comes from --tokenizer-dir (vocab.json + merges.txt or
tokenizer.json; default: the project's copy of GPT-2's, tests/data/tokenizer/gpt2).
Embedding rows beyond the tokenizer (nanoGPT's 50304 = 50257 padded, llm.c's Vp) are
dropped: no token has those ids, so nothing can sample them; the log says so.
Pickles are read by torch_pickle.py's restricted unpickler (no code runs).

Metadata written:
  general.architecture="gpt2", general.type, general.name, general.file_type
  (0 f32, 1 f16, 7 q8_0), general.quantization_version,
  gpt2.context_length, gpt2.embedding_length, gpt2.feed_forward_length,
  gpt2.block_count, gpt2.attention.head_count, gpt2.attention.layer_norm_epsilon
  GPT-2 BPE:  tokenizer.ggml.model="gpt2", .pre="gpt-2", .tokens, .token_type,
              .merges, .bos_token_id = .eos_token_id = id of <|endoftext|>,
              .add_bos_token=false
  SentencePiece: tokenizer.ggml.model="llama", .pre="default", .tokens, .scores,
              .token_type, .bos/.eos/.unknown/.padding_token_id, .add_bos_token=true,
              .add_eos_token=false, .add_space_prefix, and the raw ModelProto bytes
              as a UINT8 array under tokenizer.sentencepiece.model_proto (our key).
  characters (meta.pkl): SentencePiece as char_vocab.py describes.
Tensors (ggml ne order = reversed numpy shape):
  token_embd.weight [n_embd, n_vocab]       position_embd.weight [n_embd, n_ctx]
  blk.N.attn_norm.{weight,bias} [n_embd]    blk.N.attn_qkv.weight [n_embd, 3*n_embd] (+bias)
  blk.N.attn_output.weight [n_embd, n_embd] blk.N.ffn_norm.{weight,bias}
  blk.N.ffn_up.weight [n_embd, n_ff]        blk.N.ffn_down.weight [n_ff, n_embd]
  output_norm.{weight,bias}                 output.weight [n_embd, n_vocab] (copy of token_embd
                                            unless the checkpoint has an untied lm_head)
HF's Conv1D weights are stored (in, out); they are transposed to (out, in). nanoGPT's and
llm.c's nn.Linear weights already are (out, in).
--outtype f16/q8_0 keep 1-D tensors (norms, biases) and position_embd in f32, as
llama.cpp does; q8_0 falls back to f16 where ne[0] is not a multiple of 32.
Tensors are read from memory maps of the checkpoint and converted one at a time while
the file is written (a progress bar on a terminal for files over 64 MiB).

Exit status 0 on success; 1 with a one-line error on stderr for bad input, and
no output file is left behind.
"""
import argparse
import json
import os
import sys
import time

# The only BLAS call is all_finite's memory-bound dot product: one thread, no pool of
# spinning OpenBLAS threads (they cost more than the work; set before numpy loads BLAS).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gguf import FILE_TYPE, GGML_TYPE_NAMES, GGMLType, GGUFError, GGUFWriter, ValueType, tensor_nbytes  # noqa: E402
from hf_checkpoint import CheckpointError, load_config, load_gpt2  # noqa: E402
import char_vocab  # noqa: E402
import hf_tokenizer  # noqa: E402
import llmc_checkpoint  # noqa: E402
import nanogpt_checkpoint  # noqa: E402
from torch_pickle import TorchArchive  # noqa: E402

GGML_QUANT_VERSION = 2
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GPT2_TOKENIZER_DIR = os.path.join(ROOT, "tests", "data", "tokenizer", "gpt2")
BAR_MIN_BYTES = 64 << 20
CONV1D = ("attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj")


# ---------------------------------------------------------------- tensors
class Rows:
    """The first n rows of a tensor (the embedding without its padding rows)."""

    def __init__(self, base, n):
        self.base, self.shape, self.dtype = base, (n,) + tuple(base.shape[1:]), base.dtype

    def array(self):
        return values(self.base)[:self.shape[0]]


def values(v):
    """numpy array of a tensor that may be lazy (anything with .array())."""
    return v.array() if hasattr(v, "array") else v


def gguf_tensors(config, params):
    """Yields (gguf name, tensor) in llama.cpp's GPT-2 naming; params have Hugging Face's
    canonical names (h.0.attn.c_attn.weight, ...) with weights already (out, in)."""
    yield "token_embd.weight", params["wte.weight"]
    yield "position_embd.weight", params["wpe.weight"]
    names = [("ln_1", "attn_norm"), ("attn.c_attn", "attn_qkv"), ("attn.c_proj", "attn_output"),
             ("ln_2", "ffn_norm"), ("mlp.c_fc", "ffn_up"), ("mlp.c_proj", "ffn_down")]
    for i in range(config.n_layer):
        for src, dst in names:
            yield f"blk.{i}.{dst}.weight", params[f"h.{i}.{src}.weight"]
            yield f"blk.{i}.{dst}.bias", params[f"h.{i}.{src}.bias"]
    yield "output_norm.weight", params["ln_f.weight"]
    yield "output_norm.bias", params["ln_f.bias"]
    # GPT-2 ties its head to the embedding; llama.cpp's converter writes the copy.
    yield "output.weight", params.get("lm_head.weight", params["wte.weight"])


def choose_type(name, shape, outtype):
    """llama.cpp's rule: 1-D tensors, norms and position embeddings stay f32."""
    if outtype == "f32" or len(shape) <= 1 or name == "position_embd.weight" or not name.endswith(".weight"):
        return GGMLType.F32
    if outtype == "q8_0" and shape[-1] % 32 == 0:
        return GGMLType.Q8_0
    return GGMLType.F16


# ---------------------------------------------------------------- vocabularies
class Vocab:
    """A tokenizer ready to write: n_rows embedding rows it needs, write(w) adds the keys."""

    def __init__(self, n_rows, write, description):
        self.n_rows, self.write, self.description = n_rows, write, description


def gpt2_vocab(folder, n_vocab, trim=False):
    """GPT-2 BPE from a folder; trim=True keeps only the rows the tokenizer uses
    (trailing ids without a token are embedding padding)."""
    t = hf_tokenizer.load_gpt2_bpe(folder, n_vocab)
    if trim:
        used = [i for i, ty in enumerate(t["token_types"]) if ty != hf_tokenizer.TOKEN_UNUSED]
        n = used[-1] + 1 if used else 0
        t = dict(t, tokens=t["tokens"][:n], token_types=t["token_types"][:n])

    def write(w):
        w.add_string("tokenizer.ggml.model", "gpt2")
        w.add_string("tokenizer.ggml.pre", "gpt-2")
        w.add_array("tokenizer.ggml.tokens", ValueType.STRING, t["tokens"])
        w.add_array("tokenizer.ggml.token_type", ValueType.INT32, t["token_types"])
        w.add_array("tokenizer.ggml.merges", ValueType.STRING, t["merges"])
        if t["eot_id"] is not None:
            w.add_uint32("tokenizer.ggml.bos_token_id", t["eot_id"])
            w.add_uint32("tokenizer.ggml.eos_token_id", t["eot_id"])
        w.add_bool("tokenizer.ggml.add_bos_token", False)
    return Vocab(len(t["tokens"]), write, f"GPT-2 BPE from {folder}, {len(t['tokens'])} tokens, "
                                          f"{len(t['merges'])} merges")


def sentencepiece_vocab(hf_dir, n_vocab):
    t = hf_tokenizer.load_sentencepiece(hf_dir, n_vocab)

    def write(w):
        w.add_string("tokenizer.ggml.model", "llama")
        w.add_string("tokenizer.ggml.pre", "default")
        w.add_array("tokenizer.ggml.tokens", ValueType.STRING, t["tokens"])
        w.add_array("tokenizer.ggml.scores", ValueType.FLOAT32, np.array(t["scores"], dtype=np.float32))
        w.add_array("tokenizer.ggml.token_type", ValueType.INT32, t["token_types"])
        for key, field in (("bos_token_id", "bos_id"), ("eos_token_id", "eos_id"),
                           ("unknown_token_id", "unk_id"), ("padding_token_id", "pad_id")):
            if t[field] is not None:
                w.add_uint32("tokenizer.ggml." + key, t[field])
        w.add_bool("tokenizer.ggml.add_bos_token", True)
        w.add_bool("tokenizer.ggml.add_eos_token", False)
        w.add_bool("tokenizer.ggml.add_space_prefix", t["add_dummy_prefix"])
        w.add_array("tokenizer.sentencepiece.model_proto", ValueType.UINT8,
                    np.frombuffer(t["proto"], dtype=np.uint8))
    return Vocab(n_vocab, write, f"SentencePiece, {len(t['tokens'])} tokens, {len(t['proto'])}-byte model")


def character_vocab(meta_path):
    chars = char_vocab.load_meta(meta_path)
    proto = char_vocab.sentencepiece_proto(chars)
    unk = char_vocab.unknown_id(chars)

    def write(w):
        w.add_string("tokenizer.ggml.model", "llama")
        w.add_string("tokenizer.ggml.pre", "default")
        w.add_array("tokenizer.ggml.tokens", ValueType.STRING, [char_vocab.token_text(c) for c in chars])
        w.add_array("tokenizer.ggml.scores", ValueType.FLOAT32, np.zeros(len(chars), dtype=np.float32))
        w.add_array("tokenizer.ggml.token_type", ValueType.INT32, [hf_tokenizer.TOKEN_NORMAL] * len(chars))
        w.add_uint32("tokenizer.ggml.unknown_token_id", unk)
        w.add_bool("tokenizer.ggml.add_bos_token", False)
        w.add_bool("tokenizer.ggml.add_eos_token", False)
        w.add_bool("tokenizer.ggml.add_space_prefix", False)
        w.add_array("tokenizer.sentencepiece.model_proto", ValueType.UINT8, np.frombuffer(proto, dtype=np.uint8))
    missing = char_vocab.llama_cpp_missing(chars)
    caveat = (f"; llama.cpp aborts on characters outside it, and node-llama-cpp cannot load it: no "
              f"{''.join(missing)!r} for its load-time probe {char_vocab.LLAMA_CPP_PROBE!r}") if missing else ""
    return Vocab(len(chars), write, f"characters from {meta_path}, {len(chars)} tokens "
                                    f"(outside characters encode as {chars[unk]!r}, id {unk}){caveat}")


# ---------------------------------------------------------------- sources
class Source:
    """A checkpoint read: hyperparameters, tensors ((out, in), canonical names), tokenizer."""

    def __init__(self, kind, config, params, vocab, name, files, notes=()):
        self.kind, self.config, self.params, self.vocab = kind, config, params, vocab
        self.name, self.files, self.notes = name, files, list(notes)


def hf_source(hf_dir, source="auto", tokenizer="auto", file=None):
    config = load_config(hf_dir)
    if not config.scale_attn_weights or config.scale_attn_by_inverse_layer_idx:
        raise CheckpointError(f"{hf_dir}/config.json: scale_attn_weights=false or scale_attn_by_inverse_layer_idx=true "
                              f"change the attention scale and cannot be expressed in a gpt2 GGUF")
    kind = hf_tokenizer.detect(hf_dir, tokenizer)
    config, params, files = load_gpt2(hf_dir, source, file)
    for k in list(params):  # Conv1D (in, out) -> (out, in): a view, copied when written
        if k.endswith(".weight") and k.split(".", 2)[-1][:-len(".weight")] in CONV1D:
            params[k] = params[k].T
    vocab = gpt2_vocab(hf_dir, config.vocab_size) if kind == "gpt2" else sentencepiece_vocab(hf_dir, config.vocab_size)
    name = os.path.basename(os.path.normpath(os.path.abspath(hf_dir)))
    return Source("Hugging Face", config, params, vocab, name, files)


def trim_rows(params, n_rows, vocab_size, what):
    """Drops embedding rows no token uses; returns a note, or raises when rows are missing."""
    if n_rows > vocab_size:
        raise CheckpointError(f"{what}: the model has {vocab_size} embedding rows but the tokenizer has "
                              f"{n_rows} tokens")
    if n_rows == vocab_size:
        return None
    for k in ("wte.weight", "lm_head.weight"):
        if k in params:
            params[k] = Rows(params[k], n_rows)
    return (f"dropped embedding rows {n_rows}..{vocab_size - 1}: padding, no token has those ids "
            f"(the output layer keeps the tokenizer's {n_rows} rows)")


def nanogpt_source(path, meta=None, tokenizer_dir=None):
    config, params, train_config = nanogpt_checkpoint.load_nanogpt(path)
    tried = []
    if meta is None and tokenizer_dir is None:
        meta, tried = nanogpt_checkpoint.find_meta(path, train_config)
    if meta is not None:
        vocab = character_vocab(meta)
    else:
        folder = tokenizer_dir or GPT2_TOKENIZER_DIR
        try:
            vocab = gpt2_vocab(folder, config.vocab_size, trim=True)
        except hf_tokenizer.TokenizerError as e:
            where = f" (no meta.pkl at {', '.join(tried)})" if tried else ""
            raise CheckpointError(f"{path}: vocab_size {config.vocab_size} does not fit the GPT-2 BPE vocabulary "
                                  f"({e}); a character-level model needs its meta.pkl: --meta PATH{where}") from None
    notes = [n for n in [trim_rows(params, vocab.n_rows, config.vocab_size, path)] if n]
    if not config.bias:
        notes.append("bias=False: zero biases written (GGUF's gpt2 graph has them)")
    notes.append("nanoGPT trains with the exact erf GELU; GGUF's gpt2 graph (minigpt, llama.cpp) uses GPT-2's "
                 "tanh form, within 4.8e-4 of it per activation (at x = 2.7)")
    name = os.path.splitext(os.path.basename(path))[0]
    if name == "ckpt":  # nanoGPT's fixed file name: the run's folder says more
        name = os.path.basename(os.path.dirname(os.path.abspath(path))) or name
    return Source("nanoGPT", config, params, vocab, name, [path] + ([meta] if meta else []), notes)


def llmc_source(path, tokenizer_dir=None):
    config, params = llmc_checkpoint.load_llmc(path)
    folder = tokenizer_dir or GPT2_TOKENIZER_DIR
    vocab = gpt2_vocab(folder, config.vocab_size)
    notes = [f"llm.c version {config.version} ({llmc_checkpoint.VERSIONS[config.version][0]}), "
             f"vocab {config.vocab_size} (padded rows {config.vocab_size}..{config.padded_vocab - 1} dropped)"]
    return Source("llm.c", config, params, vocab, os.path.splitext(os.path.basename(path))[0], [path], notes)


def hf_file_source(path, source, tokenizer):
    """A checkpoint file given on its own: the Hugging Face folder around it."""
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isfile(os.path.join(folder, "config.json")):
        raise CheckpointError(f"{path}: neither a nanoGPT ckpt.pt nor an llm.c .bin, and its folder has no "
                              f"config.json (a Hugging Face checkpoint file needs its folder: config.json and "
                              f"the tokenizer files)")
    base = os.path.basename(path)
    for index in ("model.safetensors.index.json", "pytorch_model.bin.index.json"):
        p = os.path.join(folder, index)
        if os.path.isfile(p):
            try:
                with open(p, encoding="utf-8") as f:
                    if base in json.load(f).get("weight_map", {}).values():
                        return hf_source(folder, source, tokenizer)  # one shard: the whole folder
            except (ValueError, AttributeError):
                pass  # load_gpt2 reports a bad index when it reads the folder
    return hf_source(folder, source, tokenizer, file=path)


def open_source(src, source="auto", tokenizer="auto", meta=None, tokenizer_dir=None):
    """Recognises SRC (folder, torch zip, llm.c .bin, safetensors) and reads it."""
    if os.path.isdir(src):
        return hf_source(src, source, tokenizer)
    if os.path.basename(src) == "config.json" and os.path.isfile(src):
        return hf_source(os.path.dirname(src) or ".", source, tokenizer)
    if not os.path.exists(src):
        raise CheckpointError(f"{src}: no such file or folder")
    if not os.path.isfile(src):
        raise CheckpointError(f"{src}: not a regular file or a folder")
    with open(src, "rb") as f:
        head = f.read(16)
    if head[:4] == b"PK\x03\x04":
        ck = TorchArchive(src).load()
        if isinstance(ck, dict) and "model_args" in ck:
            return nanogpt_source(src, meta, tokenizer_dir)
        return hf_file_source(src, source, tokenizer)
    magic = int.from_bytes(head[:4], "little") if len(head) >= 4 else None
    if magic == llmc_checkpoint.MAGIC:
        return llmc_source(src, tokenizer_dir)
    if magic in llmc_checkpoint.OTHER_FILES:
        raise CheckpointError(f"{src}: magic {magic} marks llm.c's {llmc_checkpoint.OTHER_FILES[magic]}, not a model "
                              f"(llm.c models start with {llmc_checkpoint.MAGIC}: gpt2_124M.bin, model_*.bin)")
    if head[:4] == b"GGUF":
        raise CheckpointError(f"{src}: already a GGUF file (minigpt quantize changes its weight type)")
    if src.endswith(".safetensors") or head[8:9] == b"{":
        return hf_file_source(src, source, tokenizer)
    raise CheckpointError(f"{src}: not a checkpoint convert.py reads (first bytes {head[:8]!r}): expected a Hugging "
                          f"Face folder, a torch.save zip (nanoGPT's ckpt.pt), an llm.c .bin (magic "
                          f"{llmc_checkpoint.MAGIC}) or a .safetensors file")


# ---------------------------------------------------------------- writing
class Progress:
    """Per-tensor lines, or on a terminal for big files one bar redrawn in place."""

    def __init__(self, sizes, log, bar):
        self.sizes, self.log, self.bar = sizes, log, bar
        self.total, self.done, self.t0 = sum(s for _, _, s in sizes), 0, time.time()

    def __call__(self, i, n, name):
        ggml_type, ne, nbytes = self.sizes[i]
        if self.bar:
            width = 30
            filled = int(width * self.done / max(self.total, 1))
            sys.stderr.write(f"\rconvert: [{'#' * filled}{'.' * (width - filled)}] {100 * self.done / max(self.total, 1):3.0f}% "
                             f"{self.done >> 20}/{self.total >> 20} MiB  {name:28s}")
            sys.stderr.flush()
        elif self.log:
            self.log(f"[{i + 1:3d}/{n}] {name:28s} {GGML_TYPE_NAMES[ggml_type]:4s} ne={ne}")
        self.done += nbytes

    def finish(self):
        """Closes the bar's line (also when writing failed: the error goes below it)."""
        if self.bar:
            done = self.done >= self.total
            sys.stderr.write((f"\rconvert: [{'#' * 30}] 100% {self.total >> 20}/{self.total >> 20} MiB  "
                              f"{time.time() - self.t0:.1f} s{' ' * 20}" if done else "") + "\n")


_ZEROS = np.zeros(1 << 20, dtype=np.float32)


def all_finite(arr):
    """True unless arr holds a NaN or an infinity: x * 0 is 0 for every finite x and NaN
    otherwise, so BLAS dot products with zeros check 1 Mi values a call at memory speed
    (np.isfinite(arr).all() allocates a mask as large as the tensor and is 3x slower)."""
    flat = np.ravel(arr, order="K")  # a view for any contiguous layout, transposed ones included
    if flat.dtype != np.float32:
        return bool(np.isfinite(flat).all())
    for i in range(0, flat.size, _ZEROS.size):
        chunk = flat[i:i + _ZEROS.size]
        if not np.isfinite(np.dot(chunk, _ZEROS[:chunk.size])):
            return False
    return True


def finite_check(tname, value, where, seen):
    """The writer's check of one tensor's values; `seen` skips a value checked before
    (the tied head is the embedding, read once)."""
    def check(arr):
        if id(value) in seen:
            return
        seen.add(id(value))
        if arr.dtype.kind != "f":
            raise CheckpointError(f"{where}: tensor for {tname} has dtype {arr.dtype}, expected floating point")
        if not all_finite(arr):
            raise CheckpointError(f"{where}: tensor for {tname} contains NaN or infinity")
    return check


def convert(src, out_path, outtype="f32", name=None, source="auto", tokenizer="auto", meta=None,
            tokenizer_dir=None, log=None, bar=False):
    """Writes OUT_PATH from SRC; raises CheckpointError/TokenizerError/VocabError/GGUFError/OSError."""
    log = log or (lambda msg: None)
    if os.path.isdir(out_path):
        raise GGUFError(f"{out_path} is a directory; give the output file's path")
    s = open_source(src, source, tokenizer, meta, tokenizer_dir)
    c = s.config
    log(f"read {', '.join(s.files)} ({s.kind}): {c.n_layer} layers, {c.n_head} heads, n_embd {c.n_embd}, "
        f"n_ctx {c.n_ctx}, vocab {s.vocab.n_rows}{', untied lm_head' if 'lm_head.weight' in s.params else ''}")
    for note in s.notes:
        log(note)
    log("tokenizer: " + s.vocab.description)

    w = GGUFWriter(out_path)
    w.add_string("general.architecture", "gpt2")
    w.add_string("general.type", "model")
    w.add_string("general.name", name or s.name)
    w.add_uint32("gpt2.context_length", c.n_ctx)
    w.add_uint32("gpt2.embedding_length", c.n_embd)
    w.add_uint32("gpt2.feed_forward_length", c.n_inner)
    w.add_uint32("gpt2.block_count", c.n_layer)
    w.add_uint32("gpt2.attention.head_count", c.n_head)
    w.add_float32("gpt2.attention.layer_norm_epsilon", c.eps)
    w.add_uint32("general.file_type", FILE_TYPE[outtype])
    w.add_uint32("general.quantization_version", GGML_QUANT_VERSION)
    s.vocab.write(w)
    sizes, seen = [], set()
    for tname, value in gguf_tensors(c, s.params):
        ggml_type = choose_type(tname, value.shape, outtype)
        w.add_tensor(tname, value, ggml_type, shape=value.shape, check=finite_check(tname, value, src, seen))
        ne = list(reversed(value.shape))
        sizes.append((ggml_type, ne, tensor_nbytes(ne, ggml_type)))
    progress = Progress(sizes, log, bar and sum(n for _, _, n in sizes) >= BAR_MIN_BYTES)
    try:
        w.write(progress)
    finally:
        progress.finish()
    log(f"wrote {out_path} ({os.path.getsize(out_path)} bytes)")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("src", help="Hugging Face folder, nanoGPT ckpt.pt, llm.c .bin or .safetensors file")
    ap.add_argument("out", help="output .gguf path (written to OUT.tmp, then renamed)")
    ap.add_argument("--outtype", choices=["f32", "f16", "q8_0"], default="f32",
                    help="type of the 2-D weights; 1-D tensors and position_embd stay f32 (default: f32)")
    ap.add_argument("--name", default=None, help="general.name (default: the folder's or file's name)")
    ap.add_argument("--source", choices=["auto", "safetensors", "bin"], default="auto",
                    help="Hugging Face: which checkpoint file to read when both exist (default: safetensors)")
    ap.add_argument("--tokenizer", choices=["auto", "gpt2", "spm"], default="auto",
                    help="Hugging Face: tokenizer files to read (default: whichever the folder has)")
    ap.add_argument("--meta", default=None, metavar="META.PKL",
                    help="nanoGPT: character vocabulary (default: found as nanoGPT's sample.py finds it)")
    ap.add_argument("--tokenizer-dir", default=None, metavar="DIR",
                    help="nanoGPT/llm.c: folder with GPT-2 BPE vocab.json + merges.txt or tokenizer.json "
                         "(default: tests/data/tokenizer/gpt2, GPT-2's own)")
    ap.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    args = ap.parse_args(argv)
    log = None if args.quiet else (lambda msg: print(f"convert: {msg}", file=sys.stderr, flush=True))
    try:
        convert(args.src, args.out, args.outtype, args.name, args.source, args.tokenizer, args.meta,
                args.tokenizer_dir, log, bar=not args.quiet and sys.stderr.isatty())
    except (CheckpointError, hf_tokenizer.TokenizerError, char_vocab.VocabError, GGUFError, OSError) as e:
        print(f"convert.py: error: {e}", file=sys.stderr)
        return 1
    except Exception as e:  # a bug, or input no check above anticipated: still one line
        if os.environ.get("MINIGPT_DEBUG"):
            raise
        print(f"convert.py: error: {type(e).__name__}: {e} (set MINIGPT_DEBUG=1 for a traceback)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
