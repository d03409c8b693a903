#!/usr/bin/env python3
"""Writes the bad inputs of this folder and cases.tsv (run it after changing it;
the files are checked in). tests/e2e/test_bad_inputs.py runs every case.

cases.tsv: FILE <tab> COMMAND <tab> EXPECTED, one case a line.
  COMMAND   minigpt's arguments, or "convert.py ..." for scripts/convert.py, split
            with shlex; "@args" takes the arguments from FILE (NUL-separated,
            the format of the CLI fuzz target and its regressions).
            {FILE} the bad file; {OUT} an output path that must not exist afterwards
            (nor any {OUT}.tmp*); {MODEL} a valid tiny model; {DIR} a valid tiny
            Hugging Face folder whose checkpoint is replaced by FILE
            (*.safetensors -> model.safetensors, *.bin -> pytorch_model.bin).
  EXPECTED  a substring of stderr naming the problem; the test also checks that
            stderr names FILE (or, for arguments, the option).
  CODE      optional fourth column: the exit status the case must give (2: a
            usage error); without it 1 or 2 will do.
"""
import io, json, os, struct, sys, zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "scripts"))
from hf_tokenizer import bytes_to_unicode  # noqa: E402

cases = []


def put(rel, data, command, expected):
    path = os.path.join(HERE, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())
    cases.append((rel, command, expected))


# ---------------------------------------------------------------- GGUF
U32, F32, BOOL, STRING, ARRAY, U8 = 4, 6, 7, 8, 9, 0
T_F32, T_F16, T_Q4_0 = 0, 1, 2


def gs(x):
    b = x.encode() if isinstance(x, str) else x
    return struct.pack("<Q", len(b)) + b


def kv(key, vtype, payload):
    return gs(key) + struct.pack("<I", vtype) + payload


def kv_u32(key, v): return kv(key, U32, struct.pack("<I", v))
def kv_f32(key, v): return kv(key, F32, struct.pack("<f", v))
def kv_str(key, v): return kv(key, STRING, gs(v))
def kv_strs(key, vs): return kv(key, ARRAY, struct.pack("<IQ", STRING, len(vs)) + b"".join(gs(v) for v in vs))
def kv_bytes(key, b): return kv(key, ARRAY, struct.pack("<IQ", U8, len(b)) + b)


def tinfo(name, dims, ttype, offset):
    return (gs(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims)
            + struct.pack("<IQ", ttype, offset))


def gguf(kvs, tinfos=(), data=b"", version=3, n_kv=None, n_tensors=None, align=32):
    h = b"GGUF" + struct.pack("<IQQ", version, len(tinfos) if n_tensors is None else n_tensors,
                               len(kvs) if n_kv is None else n_kv)
    h += b"".join(kvs) + b"".join(tinfos)
    if tinfos:
        h += b"\0" * (-len(h) % align)
    return h + data


BYTE_TOKENS = [bytes_to_unicode()[b] for b in range(256)]


def tiny_model(n_ctx=4, n_embd=4, n_ff=4, n_layer=1, n_head=1, eps=1e-5, arch="gpt2", tokens=BYTE_TOKENS,
               merges=(), tok_model="gpt2", extra=(), drop=(), override=None, types=None, skip_kv=()):
    """A complete (zero-weight) GPT-2 GGUF, with changes."""
    meta = [("general.architecture", kv_str, arch), ("gpt2.context_length", kv_u32, n_ctx),
            ("gpt2.embedding_length", kv_u32, n_embd), ("gpt2.feed_forward_length", kv_u32, n_ff),
            ("gpt2.block_count", kv_u32, n_layer), ("gpt2.attention.head_count", kv_u32, n_head),
            ("gpt2.attention.layer_norm_epsilon", kv_f32, eps), ("tokenizer.ggml.model", kv_str, tok_model),
            ("tokenizer.ggml.tokens", kv_strs, list(tokens)), ("tokenizer.ggml.merges", kv_strs, list(merges))]
    kvs = [fn(k, v) for k, fn, v in meta if k not in skip_kv] + list(extra)
    V, d = len(tokens), n_embd
    shapes = [("token_embd.weight", [d, V]), ("position_embd.weight", [d, n_ctx])]
    for l in range(n_layer):
        p = f"blk.{l}."
        shapes += [(p + "attn_norm.weight", [d]), (p + "attn_norm.bias", [d]), (p + "attn_qkv.weight", [d, 3 * d]),
                   (p + "attn_qkv.bias", [3 * d]), (p + "attn_output.weight", [d, d]), (p + "attn_output.bias", [d]),
                   (p + "ffn_norm.weight", [d]), (p + "ffn_norm.bias", [d]), (p + "ffn_up.weight", [d, n_ff]),
                   (p + "ffn_up.bias", [n_ff]), (p + "ffn_down.weight", [n_ff, d]), (p + "ffn_down.bias", [d])]
    shapes += [("output_norm.weight", [d]), ("output_norm.bias", [d])]
    infos, data = [], b""
    for name, ne in shapes:
        if name in drop:
            continue
        ne = (override or {}).get(name, ne)
        t = (types or {}).get(name, T_F32)
        n = 1
        for x in ne:
            n *= x
        nbytes = n * (4 if t == T_F32 else 2)
        infos.append(tinfo(name, ne, t, len(data)))
        data += b"\0" * nbytes + b"\0" * (-nbytes % 32)
    return gguf(kvs, infos, data)


GEN = "generate -m {FILE} -p hi -n 2 --temp 0"
ARCH = [kv_str("general.architecture", "gpt2")]

# Reader: header, metadata, tensor table (inspect), some through quantize (no output left).
put("gguf/empty.gguf", b"", "inspect {FILE}", "file is empty")
put("gguf/bad_magic.gguf", b"GGML" + b"\0" * 28, "inspect {FILE}", "not a GGUF file")
put("gguf/version2.gguf", gguf(ARCH, version=2), "inspect {FILE}", "unsupported GGUF version 2")
put("gguf/truncated_header.gguf", b"GGUF\x03\0\0\0\0\0", "inspect {FILE}", "file truncated while reading tensor count")
put("gguf/huge_kv_count.gguf", gguf(ARCH, n_kv=1 << 60), "inspect {FILE}", "metadata count 1152921504606846976 cannot fit")
put("gguf/huge_tensor_count.gguf", gguf(ARCH, n_tensors=1 << 40), "quantize {FILE} {OUT} q8_0", "tensor count 1099511627776 cannot fit")
put("gguf/huge_key_length.gguf", gguf([struct.pack("<Q", 1 << 40) + b"key" + b"\0" * 16]), "inspect {FILE}", "string length 1099511627776 is absurd")
put("gguf/key_past_end.gguf", gguf([struct.pack("<Q", 1000) + b"key" + b"\0" * 16]), "inspect {FILE}", "file truncated while reading metadata key")
put("gguf/unknown_value_type.gguf", gguf([kv("k", 99, b"\0" * 8)]), "inspect {FILE}", "has unknown value type 99")
put("gguf/huge_array.gguf", gguf([kv("k", ARRAY, struct.pack("<IQ", U32, 1 << 60))]), "inspect {FILE}",
    "array of 1152921504606846976 u32 values runs past the end")
put("gguf/huge_string_array.gguf", gguf([kv("tokenizer.ggml.tokens", ARRAY, struct.pack("<IQ", STRING, 1 << 50))]),
    "inspect {FILE}", "strings cannot fit")
put("gguf/unknown_array_type.gguf", gguf([kv("k", ARRAY, struct.pack("<IQ", 77, 1))]), "inspect {FILE}",
    "unknown array element type 77")
nested = struct.pack("<IQ", ARRAY, 1) + struct.pack("<IQ", ARRAY, 1) + struct.pack("<IQ", ARRAY, 1) + struct.pack("<IQ", U8, 0)
put("gguf/nested_arrays.gguf", gguf([kv("k", ARRAY, nested)]), "inspect {FILE}", "nested deeper than 2 levels")
put("gguf/bad_bool.gguf", gguf([kv("k", BOOL, b"\x07")]), "inspect {FILE}", "bool value 7 is neither 0 nor 1")
put("gguf/duplicate_key.gguf", gguf([kv_u32("k", 1), kv_u32("k", 2)]), "inspect {FILE}", "duplicate metadata key \"k\"")
put("gguf/bad_alignment.gguf", gguf([kv_u32("general.alignment", 3)]), "inspect {FILE}", "general.alignment must be a power of two")
# Alignment 2 let an f32 tensor start at an odd address (a misaligned load; found by fuzz_gguf).
put("gguf/alignment_2.gguf", gguf([kv_u32("general.alignment", 2)], [tinfo("t", [4], T_F32, 2)], b"\0" * 32, align=2),
    "inspect {FILE}", "general.alignment must be a power of two integer between 8 and")
put("gguf/tensor_5_dims.gguf", gguf(ARCH, [tinfo("t", [1, 1, 1, 1, 1], T_F32, 0)], b"\0" * 32), "inspect {FILE}",
    "has 5 dimensions (1 to 4 allowed)")
put("gguf/tensor_zero_dim.gguf", gguf(ARCH, [tinfo("t", [4, 0], T_F32, 0)], b"\0" * 32), "inspect {FILE}",
    "has dimension 1 = 0")
put("gguf/tensor_elements_overflow.gguf", gguf(ARCH, [tinfo("t", [1 << 30, 1 << 30, 1 << 30], T_F32, 0)], b"\0" * 32),
    "inspect {FILE}", "has too many elements")
put("gguf/tensor_unsupported_type.gguf", gguf(ARCH, [tinfo("t", [32], T_Q4_0, 0)], b"\0" * 32), "inspect {FILE}",
    "which minigpt does not support")
put("gguf/tensor_q8_row.gguf", gguf(ARCH, [tinfo("t", [33], 8, 0)], b"\0" * 64), "inspect {FILE}",
    "row length 33 is not a multiple of the q8_0 block size")
put("gguf/tensor_past_end.gguf", gguf(ARCH, [tinfo("t", [1024], T_F32, 0)], b"\0" * 32),
    "quantize {FILE} {OUT} f16", "runs past the end of the file")
put("gguf/tensor_offset_huge.gguf", gguf(ARCH, [tinfo("t", [8], T_F32, (1 << 64) - 32)], b"\0" * 32),
    "inspect {FILE}", "runs past the end of the file")
put("gguf/tensor_misaligned.gguf", gguf(ARCH, [tinfo("t", [4], T_F32, 4)], b"\0" * 64), "inspect {FILE}",
    "is not a multiple of the alignment 32")
put("gguf/tensors_overlap.gguf", gguf(ARCH, [tinfo("a", [16], T_F32, 0), tinfo("b", [16], T_F32, 32)], b"\0" * 128),
    "inspect {FILE}", "overlap in the data section")
put("gguf/duplicate_tensor.gguf", gguf(ARCH, [tinfo("a", [8], T_F32, 0), tinfo("a", [8], T_F32, 32)], b"\0" * 64),
    "inspect {FILE}", "duplicate tensor name \"a\"")
put("gguf/header_only_no_data.gguf", gguf(ARCH, [tinfo("a", [8], T_F32, 0)])[:-8], "inspect {FILE}",
    "file ends before the tensor data section begins")

# Model: hyperparameters, tensors and tokenizer (generate loads everything).
put("gguf/arch_llama.gguf", tiny_model(arch="llama"), GEN, "architecture is \"llama\"")
put("gguf/missing_tensor.gguf", tiny_model(drop={"blk.0.ffn_up.weight"}), GEN, "missing tensor \"blk.0.ffn_up.weight\"")
put("gguf/wrong_shape.gguf", tiny_model(override={"blk.0.attn_qkv.weight": [4, 8]}), GEN,
    "tensor \"blk.0.attn_qkv.weight\" has shape [4, 8], expected [4, 12]")
put("gguf/norm_f16.gguf", tiny_model(types={"blk.0.attn_norm.weight": T_F16}), GEN, "expected f32")
def hparams(n_ctx=4, n_layer=1):  # metadata only: these checks come before any tensor
    return gguf([kv_str("general.architecture", "gpt2"), kv_u32("gpt2.context_length", n_ctx),
                 kv_u32("gpt2.embedding_length", 4), kv_u32("gpt2.feed_forward_length", 4),
                 kv_u32("gpt2.block_count", n_layer), kv_u32("gpt2.attention.head_count", 1)])


put("gguf/context_absurd.gguf", hparams(n_ctx=1 << 22), GEN, "\"gpt2.context_length\" = 4194304 is out of range")
put("gguf/blocks_absurd.gguf", hparams(n_layer=5000), GEN, "block_count 5000 is absurd")
put("gguf/heads_not_dividing.gguf", tiny_model(n_head=3), GEN, "embedding_length 4 is not divisible by head_count 3")
put("gguf/eps_out_of_range.gguf", tiny_model(eps=2.0), GEN, "layer_norm_epsilon = 2.000000 is out of range")
put("gguf/head_count_string.gguf", tiny_model(skip_kv={"gpt2.attention.head_count"},
                                               extra=[kv_str("gpt2.attention.head_count", "four")]), GEN,
    "\"gpt2.attention.head_count\": expected an integer, found string")
put("gguf/bos_outside_vocab.gguf", tiny_model(extra=[kv_u32("tokenizer.ggml.bos_token_id", 100000)]), GEN,
    "\"tokenizer.ggml.bos_token_id\" = 100000 is outside the vocabulary")
put("gguf/no_tokenizer.gguf", tiny_model(skip_kv={"tokenizer.ggml.model"}), GEN, "no tokenizer in the file")
put("gguf/tokenizer_missing_byte.gguf", tiny_model(tokens=["xy"] + BYTE_TOKENS[1:]), GEN,
    "no token for the single byte 0x00")
put("gguf/tokenizer_bad_merge.gguf", tiny_model(merges=["a zz"]), GEN, "merge 0 \"a zz\"")
put("gguf/tokenizer_more_tokens_than_rows.gguf", tiny_model(tokens=BYTE_TOKENS + ["extra"],
                                                            override={"token_embd.weight": [4, 256]}), GEN,
    "tokenizer has 257 tokens but the embedding has 256 rows")
put("gguf/sentencepiece_garbage_proto.gguf",
    tiny_model(tok_model="llama", extra=[kv_bytes("tokenizer.sentencepiece.model_proto", b"\x0a\xff\xff\xff\xff\x0f")]),
    GEN, "SentencePiece")
# A NUL inside a piece once reached libsentencepiece's trie builder, which aborts (std::terminate).
nul_piece_proto = b"\x0a\x09\x0a\x05<unk>\x18\x02" + b"\x0a\x04\x0a\x02\x00a"
put("gguf/sentencepiece_nul_piece.gguf",
    tiny_model(tok_model="llama", extra=[kv_bytes("tokenizer.sentencepiece.model_proto", nul_piece_proto)]),
    GEN, "SentencePiece model: piece 1 contains a NUL byte")
put("gguf/merges_not_strings.gguf", tiny_model(skip_kv={"tokenizer.ggml.merges"},
                                               extra=[kv("tokenizer.ggml.merges", ARRAY, struct.pack("<IQI", U32, 1, 5))]),
    GEN, "\"tokenizer.ggml.merges\": expected an array of strings")

# ---------------------------------------------------------------- safetensors (convert.py)
CONV = "convert.py {DIR} {OUT}"


def st(header, data=b"", hlen=None):
    h = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack("<Q", len(h) if hlen is None else hlen) + h + data


T = {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}
put("safetensors/too_short.safetensors", b"\x10\0\0", CONV, "too short for a safetensors header")
put("safetensors/header_past_end.safetensors", st({"a": T}, b"\0" * 8, hlen=100000), CONV,
    "header length 100000 runs past the end of the file")
put("safetensors/huge_header.safetensors", st({"a": T}, b"\0" * 8, hlen=1 << 40), CONV,
    "header length 1099511627776 exceeds the")
put("safetensors/not_json.safetensors", st(b"{not json", b""), CONV, "header is not valid UTF-8 JSON")
put("safetensors/duplicate_key.safetensors",
    st(b'{"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, "a": {"dtype": "F32", "shape": [2], '
       b'"data_offsets": [0, 8]}}', b"\0" * 8), CONV, "duplicate key 'a'")
put("safetensors/unknown_dtype.safetensors", st({"a": dict(T, dtype="F13")}, b"\0" * 8), CONV, "unknown dtype 'F13'")
put("safetensors/offsets_out_of_range.safetensors", st({"a": dict(T, data_offsets=[0, 1 << 40])}, b"\0" * 8), CONV,
    "run past the end of the 8-byte data buffer")
put("safetensors/offsets_reversed.safetensors", st({"a": dict(T, data_offsets=[8, 0])}, b"\0" * 8), CONV,
    "data_offsets must be [begin, end]")
put("safetensors/overlap.safetensors", st({"a": dict(T, data_offsets=[0, 8]), "b": dict(T, data_offsets=[4, 12])},
                                          b"\0" * 12), CONV, "overlap the previous tensor")
put("safetensors/shape_size_mismatch.safetensors", st({"a": dict(T, shape=[3, 3])}, b"\0" * 8), CONV,
    "F32[3, 3] needs 36 bytes but data_offsets [0, 8] span 8")
put("safetensors/negative_shape.safetensors", st({"a": dict(T, shape=[-2])}, b"\0" * 8), CONV,
    "shape must be a list of non-negative integers")
put("safetensors/unused_bytes.safetensors", st({"a": T}, b"\0" * 16), CONV, "8 bytes that no tensor uses")
# The same through `minigpt convert`: its native reader refuses them and the script names the problem.
for name, expected in (("duplicate_key", "duplicate key 'a'"), ("overlap", "overlap the previous tensor"),
                       ("huge_header", "exceeds the"), ("shape_size_mismatch", "needs 36 bytes"),
                       ("unused_bytes", "8 bytes that no tensor uses")):
    with open(os.path.join(HERE, "safetensors", name + ".safetensors"), "rb") as f:
        put(f"safetensors/{name}_front_door.safetensors", f.read(), "convert {DIR} {OUT}", expected)

# ---------------------------------------------------------------- pickles (convert.py --source bin)
CONVB = "convert.py {DIR} {OUT} --source bin"


def torch_zip(pkl, extra=(), name="archive/data.pkl"):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:  # fixed timestamps: the same bytes on every run
        for n, d in [(name, pkl), *extra]:
            z.writestr(zipfile.ZipInfo(n, date_time=(1980, 1, 1, 0, 0, 0)), d)
    return buf.getvalue()


def P(s):  # protocol-2 string
    b = s.encode()
    return b"X" + struct.pack("<I", len(b)) + b


put("pickle/forbidden_os_system.bin", torch_zip(b"cos\nsystem\n(S'echo pwned'\ntR."), CONVB,
    "refusing to load global 'os.system'")
put("pickle/forbidden_builtins_eval.bin", torch_zip(b"\x80\x02cbuiltins\neval\nX\x04\x00\x00\x001+1\x85R."), CONVB,
    "refusing to load global 'builtins.eval'")
put("pickle/truncated_stream.bin", torch_zip(b"\x80\x02}q\x00(X\x01\x00\x00\x00a"), CONVB, "cannot unpickle archive/data.pkl")
put("pickle/not_a_zip.bin", b"\x80\x02}q\x00.", CONVB, "not a zip archive")
put("pickle/no_data_pkl.bin", torch_zip(b"\x80\x02}.", name="archive/other.pkl"), CONVB,
    "expected exactly one PREFIX/data.pkl")
put("pickle/not_a_state_dict.bin", torch_zip(b"\x80\x02]q\x00."), CONVB, "the pickle holds a list, expected a state dict")
put("pickle/big_endian.bin", torch_zip(b"\x80\x02}.", [("archive/byteorder", b"big")]), CONVB, "byteorder is 'big'")
# {"w": _rebuild_tensor_v2(persistent storage "0" of 4 floats, ...)} with no archive/data/0 member
missing = (b"\x80\x02}" + P("w") + b"ctorch._utils\n_rebuild_tensor_v2\n(" + b"(" + P("storage") +
           b"ctorch\nFloatStorage\n" + P("0") + P("cpu") + b"K\x04tQ" + b"K\x00K\x04\x85K\x01\x85\x89}tRs.")
put("pickle/missing_storage.bin", torch_zip(missing), CONVB, "storage archive/data/0 is missing from the archive")

# ---------------------------------------------------------------- other checkpoints (convert.py and minigpt convert SRC)
CONVF = "convert.py {FILE} {OUT}"
# a nanoGPT-shaped ckpt.pt whose pickle calls os.system where train.py keeps the model; the
# *_front_door files go through `minigpt convert`, which runs convert.py and passes its status on
EVIL_CKPT = torch_zip(b"\x80\x02}(" + P("model") + b"cos\nsystem\n" + P("echo pwned") + b"\x85R" + P("model_args")
                      + b"}u.")
put("checkpoint/ckpt_forbidden_global.pt", EVIL_CKPT, CONVF, "refusing to load global 'os.system'")
put("checkpoint/ckpt_forbidden_global_front_door.pt", EVIL_CKPT, "convert {FILE} {OUT}",
    "refusing to load global 'os.system'")
LLMC = struct.pack("<8i", 20240326, 3, 4, 4, 1, 1, 4, 4) + b"\0" * (1024 - 32)  # maxT V L NH C Vp = 4 4 1 1 4 4
LLMC_PARAMS = 4 * 4 + 4 * 4 + 12 * 16 + 13 * 4 + 2 * 4  # wte, wpe, one layer, ln_f (fp32)
put("checkpoint/llmc_wrong_magic.bin", struct.pack("<i", 20240327) + LLMC[4:] + b"\0" * 4 * LLMC_PARAMS, CONVF,
    "magic 20240327 marks llm.c's debug state file")
put("checkpoint/llmc_truncated_header.bin", LLMC[:100], CONVF, "file is 100 bytes, too short for llm.c's 1024-byte header")
put("checkpoint/llmc_param_count.bin", LLMC + b"\0" * 4 * (LLMC_PARAMS - 1), CONVF,
    f"describes {LLMC_PARAMS} parameters = {1024 + 4 * LLMC_PARAMS} bytes with the header, but the file has")
put("checkpoint/llmc_param_count_front_door.bin", LLMC + b"\0" * 4 * (LLMC_PARAMS - 1), "convert {FILE} {OUT}",
    "but the file has")
put("checkpoint/llmc_truncated_header_front_door.bin", LLMC[:100], "convert {FILE} {OUT}", "too short for llm.c's")
put("checkpoint/llmc_version_2.bin", LLMC[:4] + struct.pack("<i", 2) + LLMC[8:] + b"\0" * 4 * LLMC_PARAMS, CONVF,
    "llm.c checkpoint version 2 is not supported")
put("checkpoint/not_a_checkpoint.bin", b"\x01\x02\x03\x04 no model here", CONVF, "not a checkpoint convert.py reads")
# Hugging Face config.json of other architectures (convert.py reads the folder around it)
for arch, model_type in (("LlamaForCausalLM", "llama"), ("GPT2ForSequenceClassification", "gpt2")):
    put(f"checkpoint/{arch}/config.json", json.dumps({"architectures": [arch], "model_type": model_type}), CONVF,
        f"architectures ['{arch}']")
# every model command says how to convert a checkpoint it was given instead of a GGUF file
put("checkpoint/model_is_a_ckpt.pt", torch_zip(b"\x80\x02}."), "generate -m {FILE} -p hi -n 2",
    "convert it to GGUF with: minigpt convert")
put("checkpoint/model_is_llmc.bin", LLMC, "logits -m {FILE} --ids 1", "this is an llm.c model checkpoint")

# ---------------------------------------------------------------- tokenizer files (tokenize --vocab --merges)
GOOD_VOCAB = json.dumps({t: i for i, t in enumerate(BYTE_TOKENS)}, ensure_ascii=False)
put("tokenizer/good_vocab.json", GOOD_VOCAB, None, None)
put("tokenizer/good_merges.txt", "#version: 0.2\n", None, None)
TOKV = "tokenize --vocab {FILE} --merges tests/bad_inputs/tokenizer/good_merges.txt -p hi"
TOKM = "tokenize --vocab tests/bad_inputs/tokenizer/good_vocab.json --merges {FILE} -p hi"
put("tokenizer/vocab_not_json.json", "{\"a\": 1,,}", TOKV,
    "invalid JSON at column 9: syntax error while parsing object key - unexpected ','")
put("tokenizer/vocab_empty.json", "{}", TOKV, "the vocabulary object is empty")
put("tokenizer/vocab_huge_id.json", GOOD_VOCAB[:-1] + ", \"zz\": 2147483000}", TOKV,
    "token id 2147483000 is far beyond the 257 entries")
put("tokenizer/vocab_id_too_big.json", "{\"a\": 99999999999}", TOKV, "a token id below 2^31")
put("tokenizer/vocab_duplicate_id.json", GOOD_VOCAB[:-1] + ", \"zz\": 5}", TOKV, "id 5 is given to both")
put("tokenizer/vocab_missing_byte.json", json.dumps({t: i for i, t in enumerate(BYTE_TOKENS[:200])}), TOKV,
    "no token for the single byte 0xC8")
put("tokenizer/vocab_bad_escape.json", "{\"a\\q\": 1}", TOKV, "forbidden character after backslash")
put("tokenizer/merges_bad_line.txt", "#version: 0.2\na b c\n", TOKM, "line 2: expected two token texts")
put("tokenizer/merges_unknown_token.txt", "#version: 0.2\na zz\n", TOKM, "merge 0 \"a zz\"")

# ---------------------------------------------------------------- traces and attention files (view)
GOOD_TRACE = json.dumps({"type": "prompt", "model": "x", "n_layer": 1, "n_head": 1, "n_vocab": 256, "top_k": 0,
                         "attention": None, "tokens": [{"pos": 0, "id": 1, "text": "a"},
                                                       {"pos": 1, "id": 2, "text": "b"}]}) + "\n"
put("view/good_trace.jsonl", GOOD_TRACE, None, None)
VIEWA = "view tests/bad_inputs/view/good_trace.jsonl --attention {FILE} -o {OUT}"
put("view/trace_not_json.jsonl", GOOD_TRACE + "{\"type\": \"step\", \n", "view {FILE} -o {OUT}", "invalid JSON")
put("view/trace_no_prompt.jsonl", "{\"type\": \"step\"}\n", "view {FILE} -o {OUT}",
    "a \"step\" line before the \"prompt\" line")


def attn(blocks, n_tokens=2, magic=b"MGPTATTN"):
    h = magic + struct.pack("<IIIIQQQ", 1, 0, 1, 1, n_tokens, len(blocks), 0)
    return h + b"".join(struct.pack("<QQ", p0, rows) + data for p0, rows, data in blocks) + b"\0" * 4 * n_tokens


put("view/attention_bad_magic.attn", attn([], magic=b"NOTATTN!"), VIEWA, "not a minigpt attention file")
# Block 1 claims 2^64 - 1 rows from position 1: pos0 + rows wrapped to 0 and passed the range check.
put("view/attention_wrapping_block.attn", attn([(0, 1, struct.pack("<f", 1.0)), (1, (1 << 64) - 1, b"")]), VIEWA,
    "block 1 covers positions 1+18446744073709551615")
put("view/attention_short_block.attn", attn([(0, 2, b"")]), VIEWA, "block 0 data past the end of the file")

# ---------------------------------------------------------------- arguments (NUL-separated argv, {MODEL} a good model)


def args(name, argv, expected, code=None):
    put(f"args/{name}.args", "\0".join(argv), "@args", expected)
    if code is not None:
        cases[-1] += (code,)


args("ctx_beyond_model", ["generate", "-m", "{MODEL}", "-p", "hi", "-c", "100000"], "--ctx-size 100000 exceeds the model's context length")
args("ctx_beyond_model_perplexity", ["perplexity", "-m", "{MODEL}", "-f", "{MODEL}", "-c", "100000"], "100000")
args("n_predict_negative", ["generate", "-m", "{MODEL}", "-p", "hi", "-n", "-5"], "--n-predict")
args("n_predict_huge", ["generate", "-m", "{MODEL}", "-p", "hi", "-n", "99999999999999999999999"], "--n-predict")
args("top_p_above_one", ["generate", "-m", "{MODEL}", "-p", "hi", "--top-p", "2"], "--top-p: must lie in (0, 1]")
args("threads_zero", ["generate", "-m", "{MODEL}", "-p", "hi", "-t", "0"], "--threads: must be between 1 and 1024")
args("batch_zero", ["generate", "-m", "{MODEL}", "-p", "hi", "-b", "0"], "--batch-size: must be at least 1")
args("temp_nan", ["generate", "-m", "{MODEL}", "-p", "hi", "--temp", "nan"], "--temp: expected a number")
args("ids_outside_vocab", ["generate", "-m", "{MODEL}", "--ids", "1 99999"], "token id 99999 is outside the vocabulary")
args("ids_not_numbers", ["generate", "-m", "{MODEL}", "--ids", "1 two"], "--ids: expected token ids")
args("model_missing", ["generate", "-m", "/nonexistent/model.gguf", "-p", "hi"], "no such file \"/nonexistent/model.gguf\"")
args("unknown_flag", ["generate", "-m", "{MODEL}", "-p", "hi", "--frobnicate"], "frobnicate")
args("logits_ids_outside_vocab", ["logits", "-m", "{MODEL}", "--ids", "1 99999"],
     "--ids: token id 99999 is outside the vocabulary")
args("logits_ids_beyond_context", ["logits", "-m", "{MODEL}", "--ids", " ".join(["1"] * 200), "-o", "{OUT}"],
     "--ids: 200 ids exceed the model's context of 128 positions")
args("quantize_bad_type", ["quantize", "{MODEL}", "{OUT}", "q4_0"], "q4_0")
args("ablate_bad_head", ["generate", "-m", "{MODEL}", "-p", "hi", "--ablate", "99.0"], "99.0")
# heads circuits: the token sample beyond the vocabulary or negative, a count that is no number,
# no model or a missing one, a file that is no GGUF; none may leave --csv/--svg behind
CIRCUITS = ["heads", "circuits", "-m", "{MODEL}", "--csv", "{OUT}"]
args("circuits_copy_tokens_beyond_vocab", CIRCUITS + ["--copy-tokens", "5000"],
     "--copy-tokens: must be between 0 and 1024 (the vocabulary), got 5000")
args("circuits_copy_tokens_negative", CIRCUITS + ["--copy-tokens", "-3"], "--copy-tokens: must be at least 0, got -3")
args("circuits_top_not_a_number", CIRCUITS + ["--top", "ten"], "--top: expected an integer, got \"ten\"")
args("circuits_no_model", ["heads", "circuits", "--svg", "{OUT}"], "-m/--model is required")
args("circuits_model_missing", ["heads", "circuits", "-m", "/nonexistent/model.gguf", "--svg", "{OUT}"],
     "-m/--model: no such file \"/nonexistent/model.gguf\"")
cases.append(("gguf/bad_magic.gguf", "heads circuits -m {FILE} --csv {OUT} --svg {OUT}", "not a GGUF file"))
# heads dla / heads patch: wrong lengths, tokens that are not one vocabulary entry or
# lie outside it, bad head names, --pos outside the text; no --csv/--svg left behind.
DLA = ["heads", "dla", "-m", "{MODEL}", "--ids", "1 2 3", "--csv", "{OUT}", "--svg", "{OUT}"]
PATCH = ["heads", "patch", "-m", "{MODEL}", "--csv", "{OUT}", "--svg", "{OUT}"]
args("dla_pos_beyond_text", DLA + ["--pos", "3"], "--pos: must be between 0 and 2, got 3")
args("dla_target_not_one_token", DLA + ["--target", "the old man"], "--target: \"the old man\" is not one token")
args("dla_target_id_outside_vocab", DLA + ["--target", "#99999"], "--target: token id 99999 is outside the vocabulary")
args("dla_contrast_one_token", DLA + ["--contrast", "#5"], "--contrast: expected two tokens A,B")
args("dla_ids_outside_vocab", ["heads", "dla", "-m", "{MODEL}", "--ids", "1 99999", "--csv", "{OUT}"],
     "--ids: token id 99999 is outside the vocabulary")
args("patch_ids_lengths_differ", PATCH + ["--clean-ids", "1 2 3", "--corrupt-ids", "1 2", "--answer", "#5"],
     "--clean-ids and --corrupt-ids differ in length: 3 and 2 tokens")
args("patch_text_lengths_differ", PATCH + ["--clean", "the old man", "--corrupt", "the old", "--answer", "#5"],
     "--clean and --corrupt differ in length")
args("patch_answer_not_one_token", PATCH + ["--clean-ids", "1 2 3", "--corrupt-ids", "1 2 4", "--answer", "the old man"],
     "--answer: \"the old man\" is not one token")
args("patch_wrong_outside_vocab", PATCH + ["--clean-ids", "1 2 3", "--corrupt-ids", "1 2 4", "--answer", "#5",
                                           "--wrong", "#99999"], "--wrong: token id 99999 is outside the vocabulary")
args("patch_bad_head", PATCH + ["--clean-ids", "1 2 3", "--corrupt-ids", "1 2 4", "--answer", "#5", "--heads", "0.9"],
     "--heads: \"0.9\": the model has 4 heads per layer")
args("patch_same_metric", PATCH + ["--clean-ids", "1 2 3", "--corrupt-ids", "1 2 3", "--answer", "#5"],
     "the clean and corrupted runs give the same metric")
# Every command's numbers checked by the one flag helper (src/cli/args.h): a value out of
# range is a usage error (exit 2) whose message names the flag, before any work is done.
FLAGS = [
    ("generate_trace_top_k_negative", ["generate", "-m", "{MODEL}", "-p", "hi", "--trace-top-k", "-1"],
     "--trace-top-k: must be between 0 and 1000000, got -1"),
    ("generate_ablate_mode_unknown", ["generate", "-m", "{MODEL}", "-p", "hi", "--ablate", "0.0", "--ablate-mode", "avg"],
     "--ablate-mode must be zero or mean, got \"avg\""),
    ("perplexity_batch_zero", ["perplexity", "-m", "{MODEL}", "-f", "{MODEL}", "-b", "0"],
     "--batch-size: must be at least 1, got 0"),
    ("perplexity_threads_zero", ["perplexity", "-m", "{MODEL}", "-f", "{MODEL}", "-t", "0"],
     "--threads: must be between 1 and 1024, got 0"),
    ("perplexity_ctx_one", ["perplexity", "-m", "{MODEL}", "-f", "{MODEL}", "-c", "1"],
     "--ctx-size: must be 0 (512 or the model's context) or at least 2, got 1"),
    ("perplexity_stride_zero", ["perplexity", "-m", "{MODEL}", "-f", "{MODEL}", "--stride", "0"],
     "--stride: must be at least 1, got 0"),
    ("logits_threads_huge", ["logits", "-m", "{MODEL}", "--ids", "1 2", "-t", "2000", "-o", "{OUT}"],
     "--threads: must be between 1 and 1024, got 2000"),
    ("logits_batch_zero", ["logits", "-m", "{MODEL}", "--ids", "1 2", "-b", "0", "-o", "{OUT}"],
     "--batch-size: must be at least 1, got 0"),
    ("logits_ablate_bad_head", ["logits", "-m", "{MODEL}", "--ids", "1 2", "--ablate", "0.99", "-o", "{OUT}"],
     "--ablate: \"0.99\": the model has"),
    ("heads_logits_mode_unknown", ["heads", "logits", "-m", "{MODEL}", "--ids", "1 2", "--mode", "sideways"],
     "--mode: must be prefill or decode, got \"sideways\""),
    ("heads_stats_sim_rows_negative", ["heads", "stats", "-m", "{MODEL}", "--ids", "1 2 3", "--sim-rows", "-1",
                                       "--csv", "{OUT}"], "--sim-rows: must be at least 0, got -1"),
    ("heads_stats_ctx_one", ["heads", "stats", "-m", "{MODEL}", "--ids", "1 2 3", "-c", "1"],
     "--ctx-size: must be 0 (512 or the model's context) or at least 2, got 1"),
    ("heads_importance_top_negative", ["heads", "importance", "-m", "{MODEL}", "--ids", "1 2 3", "--top", "-1",
                                       "--csv", "{OUT}"], "--top: must be at least 0, got -1"),
    ("heads_importance_ctx_beyond_model", ["heads", "importance", "-m", "{MODEL}", "--ids", "1 2 3", "-c", "500"],
     "--ctx-size 500 exceeds the model's context length of 128"),
    ("quantize_threads_zero", ["quantize", "{MODEL}", "{OUT}", "q8_0", "-t", "0"],
     "--threads: must be between 1 and 1024, got 0"),
    ("bench_repetitions_zero", ["bench", "-r", "0", "--no-llama", "-o", "{OUT}"],
     "--repetitions: must be between 1 and 1000, got 0"),
    ("bench_threads_list", ["bench", "-t", "1,x", "--no-llama", "-o", "{OUT}"], "--threads: \"x\" is not an integer >= 1"),
    ("view_thumb_zero", ["view", "tests/bad_inputs/view/good_trace.jsonl", "--thumb", "0", "-o", "{OUT}"],
     "--thumb: must be between 1 and 512, got 0"),
    ("tokenize_prompt_and_file", ["tokenize", "-m", "{MODEL}", "-p", "hi", "-f", "{MODEL}"],
     "give only one of -p/--prompt and -f/--file"),
    ("inspect_stray_argument", ["inspect", "{MODEL}", "extra"], "unexpected argument \"extra\""),
]
for _name, _argv, _expected in FLAGS:
    args("flag_" + _name, _argv, _expected, code=2)

# heads grad: --ids and -f, the windows' flags (perplexity's), nothing written on error.
GRAD = ["heads", "grad", "-m", "{MODEL}"]
args("heads_grad_ids_outside_vocab", GRAD + ["--ids", "1 99999", "--csv", "{OUT}"],
     "--ids: token id 99999 is outside the vocabulary")
args("heads_grad_one_id", GRAD + ["--ids", "5"], "--ids: need at least 2 ids")
args("heads_grad_ids_beyond_context", GRAD + ["--ids", " ".join(["1"] * 200), "--csv", "{OUT}"],
     "--ids: 200 ids exceed the model's context of 128 positions")
args("heads_grad_file_and_ids", GRAD + ["-f", "{FILE}", "--ids", "1 2"], "give the text as -f/--file FILE or as --ids")
args("heads_grad_ctx_with_ids", GRAD + ["--ids", "1 2 3", "-c", "4"], "--ctx-size applies to -f/--file")
args("heads_grad_ctx_beyond_model", GRAD + ["-f", "{FILE}", "-c", "100000"],
     "--ctx-size 100000 exceeds the model's context length of 128")
args("heads_grad_text_too_short", GRAD + ["-f", "{FILE}", "-c", "64", "--svg", "{OUT}"],
     "you need at least 128 tokens to evaluate perplexity with a context of 64")
args("heads_grad_stride_zero", GRAD + ["-f", "{FILE}", "--stride", "0"], "--stride: must be between 1 and 128, got 0")
args("heads_grad_text_missing", GRAD + ["-f", "/nonexistent/text.txt"], "/nonexistent/text.txt: cannot read")

with open(os.path.join(HERE, "cases.tsv"), "w") as f:
    f.write("# file\tcommand\texpected (written by make_bad_inputs.py)\n")
    for rel, command, expected, *code in cases:
        if command:
            f.write(f"{rel}\t{command}\t{expected}" + "".join(f"\t{c}" for c in code) + "\n")
print(f"{sum(1 for c in cases if c[1])} cases")
