#!/usr/bin/env python3
"""Seed corpora for the fuzz targets, made from the test files (run by `make fuzz`).

  make_corpus.py OUT_DIR   ->  OUT_DIR/{gguf,bpe,sentencepiece,cli,checkpoint}/ and OUT_DIR/cli.dict

gguf           tiny GPT-2 GGUFs (f32, f16, q8_0; BPE and SentencePiece tokenizers) made
               by scripts/make_random_model.py + scripts/convert.py, a few KB each
bpe            tests/data/tokenizer/gpt2_cases.tsv texts (mode bytes 0 and 1), their ids
               (mode 2 and 3), the head of vocab.json (mode 4)
sentencepiece  tests/data/tokenizer/spm_*.model with texts of spm_cases.tsv
checkpoint     tests/data/torch's archives, an llm.c file and a model.safetensors, each
               after the mode byte fuzz_checkpoint.cpp reads
cli            every run_minigpt([...]) argument list of tests/e2e (non-literal
               arguments become "model.gguf"), plus cli.dict: every flag in src/cli
Each target's inputs follow the layout its tests/fuzz/fuzz_*.cpp describes.
"""
import ast, glob, hashlib, os, re, struct, subprocess, sys, tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOK = os.path.join(ROOT, "tests", "data", "tokenizer")


def put(d, data):
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, hashlib.sha1(data).hexdigest()[:16]), "wb") as f:
        f.write(data)


def read_tsv(path):
    rows = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.startswith("#") or not line.strip():
                continue
            rows.append(line.rstrip("\n").split("\t"))
    return rows


def gguf_seeds(out):
    py = sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        small = ["--n-layer", "1", "--n-head", "2", "--n-ctx", "8"]
        variants = [("f32", ["--n-embd", "8", "--vocab-size", "300"], "f32"),
                    ("f16", ["--n-embd", "8", "--vocab-size", "300", "--untied"], "f16"),
                    ("q8", ["--n-embd", "32", "--vocab-size", "260"], "q8_0"),
                    ("spm", ["--n-embd", "8", "--tokenizer-model", os.path.join(TOK, "spm_bpe.model")], "f32")]
        for name, extra, outtype in variants:
            hf, gguf = os.path.join(tmp, name), os.path.join(tmp, name + ".gguf")
            for cmd in ([py, os.path.join(ROOT, "scripts", "make_random_model.py"), hf, *small, *extra],
                        [py, os.path.join(ROOT, "scripts", "convert.py"), hf, gguf, "--outtype", outtype, "-q"]):
                subprocess.run(cmd, check=True, capture_output=True)
            with open(gguf, "rb") as f:
                data = f.read()
            put(out, data)
            put(out, data[:200])  # a header cut short


def bpe_seeds(out):
    for row in read_tsv(os.path.join(TOK, "gpt2_cases.tsv")):
        text = bytes.fromhex(row[2]) if len(row) > 2 else b""
        mode = 1 if len(row) > 1 and row[1] != "ordinary" else 0
        put(out, bytes([mode]) + text)
        ids = [int(x) for x in row[3].split()] if len(row) > 3 else []
        packed = b"".join(struct.pack("<H", i) for i in ids if i < 65536)
        put(out, b"\x02" + packed)
        put(out, b"\x03" + packed)
    with open(os.path.join(TOK, "gpt2_brown.txt"), "rb") as f:
        put(out, b"\x00" + f.read(2000))
    with open(os.path.join(TOK, "gpt2", "vocab.json"), "rb") as f:
        head = f.read(300)
    put(out, b"\x04" + head[:head.rfind(b",")] + b"}")


def sentencepiece_seeds(out):
    texts = [bytes.fromhex(r[2]) if len(r) > 2 and re.fullmatch(r"[0-9a-f]*", r[2]) else r[-1].encode()
             for r in read_tsv(os.path.join(TOK, "spm_cases.tsv"))][:12] or [b"Hello world"]
    for model in sorted(glob.glob(os.path.join(TOK, "spm_*.model"))):
        with open(model, "rb") as f:
            proto = f.read()
        for t in texts:
            put(out, struct.pack("<H", len(t)) + t + proto)


def cli_seeds(out, dict_path):
    for path in sorted(glob.glob(os.path.join(ROOT, "tests", "e2e", "test_*.py"))):
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read())
        for node in ast.walk(tree):
            if (isinstance(node, ast.Call) and getattr(node.func, "id", None) == "run_minigpt" and node.args
                    and isinstance(node.args[0], ast.List)):
                args = [e.value if isinstance(e, ast.Constant) and isinstance(e.value, str) else "model.gguf"
                        for e in node.args[0].elts]
                if args:
                    put(out, "\0".join(args).encode())
    flags = set()
    for path in glob.glob(os.path.join(ROOT, "src", "cli", "*.[ch]*")):
        with open(path, encoding="utf-8") as f:
            for short, long_ in re.findall(r'\(\s*"(?:(\w),)?([a-z][a-z0-9-]+)"\s*,', f.read()):
                flags.add("--" + long_)
                if short:
                    flags.add("-" + short)
    with open(dict_path, "w") as f:
        for fl in sorted(flags):
            f.write(f'"{fl}"\n')


def checkpoint_seeds(out):
    """fuzz_checkpoint: mode byte 0 + the torch.save archives of tests/data/torch, 1 + an
    llm.c file, 2 + the model.safetensors of a model shaped as fuzz_checkpoint's config.json."""
    torch_dir = os.path.join(ROOT, "tests", "data", "torch")
    for name in sorted(os.listdir(torch_dir)):
        if name.endswith(".pt"):
            with open(os.path.join(torch_dir, name), "rb") as f:
                put(out, b"\0" + f.read())
    import numpy as np
    L, C, T, V = 1, 8, 8, 300
    n = (V * C + T * C + L * (12 * C * C + 13 * C) + 2 * C)
    header = np.array([20240326, 3, T, V, L, 2, C, V] + [0] * 248, dtype="<i4").tobytes()
    put(out, b"\1" + header + np.linspace(-1, 1, n, dtype="<f4").tobytes())
    with tempfile.TemporaryDirectory() as tmp:
        hf = os.path.join(tmp, "hf")
        subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "make_random_model.py"), hf, "--n-layer", "1",
                        "--n-head", "2", "--n-embd", "8", "--n-ctx", "8", "--vocab-size", "300"],
                       check=True, capture_output=True)
        with open(os.path.join(hf, "model.safetensors"), "rb") as f:
            put(out, b"\2" + f.read())


def main():
    out = sys.argv[1]
    checkpoint_seeds(os.path.join(out, "checkpoint"))
    gguf_seeds(os.path.join(out, "gguf"))
    bpe_seeds(os.path.join(out, "bpe"))
    sentencepiece_seeds(os.path.join(out, "sentencepiece"))
    cli_seeds(os.path.join(out, "cli"), os.path.join(out, "cli.dict"))
    for t in ("gguf", "bpe", "sentencepiece", "cli", "checkpoint"):
        print(f"corpus {t}: {len(os.listdir(os.path.join(out, t)))} seeds")


if __name__ == "__main__":
    main()
