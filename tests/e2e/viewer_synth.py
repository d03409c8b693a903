"""Synthetic inputs for the viewer tests, in the formats minigpt writes.

- trace JSONL as src/analysis/trace.h describes it (a "prompt" line, then one "step"
  line per generated token with its candidates and, optionally, a logit lens);
- attention export as src/analysis/attention_export.h / docs/attention-format.md
  describe it ("MGPTATTN" v1: header, one block per forward batch, token ids).

The attention patterns are built per head so that each head has a known,
recognisable shape (previous token, first-token sink, uniform, local window,
peaky random), rows summing to 1 and zero above the diagonal. Run as a script
to write a set of files by hand:

    /usr/bin/python3 tests/e2e/viewer_synth.py OUTDIR --layers 12 --heads 12 --tokens 1024
"""
import argparse, json, os, struct
import numpy as np

WORDS = ["The", " old", " man", " looked", " at", " the", " sea", ",", " and", " <script>", " &amp;",
         "\n", " caf\u00e9", " \U0001F600", ' "quoted"', " back\\slash", " \u2028sep", "</script>", " it", ".",
         "\ufffd",  # a token ending inside a UTF-8 sequence, as the trace writes it (with "hex")
         ""]  # a token with no text (SentencePiece's <s>)


def token_text(i):
    return WORDS[i % len(WORDS)]


def head_pattern(kind, T, rng):
    """(T, T) row-stochastic lower-triangular matrix of one head."""
    i = np.arange(T)
    if kind == "prev":       # all weight on the previous token (position 0 on itself)
        A = np.zeros((T, T))
        A[i, np.maximum(i - 1, 0)] = 1.0
        return A
    if kind == "sink":       # mostly the first token, the rest spread evenly
        A = np.tril(np.ones((T, T))) * 0.3 / (i[:, None] + 1)
        A[:, 0] += 0.7
        return A
    if kind == "uniform":
        return np.tril(np.ones((T, T))) / (i[:, None] + 1)
    if kind == "local":      # decays with distance
        d = i[:, None] - i[None, :]
        S = np.where(d >= 0, -0.5 * d, -np.inf)
    else:                    # "peaky": random scores, sharp softmax
        S = np.where(i[None, :] <= i[:, None], rng.standard_normal((T, T)) * 3.0, -np.inf)
    S = S - S.max(axis=1, keepdims=True)
    E = np.exp(S)
    return E / E.sum(axis=1, keepdims=True)


KINDS = ["prev", "sink", "uniform", "local", "peaky"]


def head_kind(l, h):
    return KINDS[(l * 7 + h * 3) % len(KINDS)]


def make_attention(n_layer, n_head, T, seed=0, dtype=np.float32):
    """Packed lower triangles (n_layer, n_head, T(T+1)/2): row p of a head is
    packed[l, h, p(p+1)/2 : p(p+1)/2 + p + 1], as the attention file stores it."""
    rng = np.random.default_rng(seed)
    r, c = np.tril_indices(T)
    out = np.empty((n_layer, n_head, T * (T + 1) // 2), dtype=dtype)
    fixed = {}  # the deterministic kinds are computed once
    for l in range(n_layer):
        for h in range(n_head):
            kind = head_kind(l, h)
            if kind == "peaky":
                out[l, h] = head_pattern(kind, T, rng)[r, c]
            else:
                if kind not in fixed:
                    fixed[kind] = head_pattern(kind, T, rng)[r, c]
                out[l, h] = fixed[kind]
    return out


def row(packed, l, h, p):
    """Row p (p + 1 weights) of head (l, h), as float64."""
    o = p * (p + 1) // 2
    return packed[l, h, o:o + p + 1].astype(np.float64)


def write_attention(path, packed, ids, n_prompt):
    """Writes packed triangles (see make_attention; float16 or float32) in the
    MGPTATTN v1 format: one block for the prompt, then one block per further
    position, as generate runs them."""
    n_layer, n_head, n = packed.shape
    T = int((np.sqrt(8 * n + 1) - 1) / 2)
    assert T * (T + 1) // 2 == n
    dtype = 1 if packed.dtype == np.float16 else 0
    blocks = [(0, n_prompt)] + [(p, 1) for p in range(n_prompt, T)]
    with open(path, "wb") as f:
        f.write(b"\0" * 48)
        for pos0, k in blocks:
            f.write(struct.pack("<QQ", pos0, k))
            a, b = pos0 * (pos0 + 1) // 2, (pos0 + k) * (pos0 + k + 1) // 2
            f.write(np.ascontiguousarray(packed[:, :, a:b]).astype(packed.dtype.newbyteorder("<")).tobytes())
        ids_offset = f.tell()
        f.write(np.asarray(ids[:T], dtype="<i4").tobytes())
        f.seek(0)
        f.write(b"MGPTATTN" + struct.pack("<IIIIQQQ", 1, dtype, n_layer, n_head, T, len(blocks), ids_offset))


def write_trace(path, n_layer, n_head, ids, n_prompt, attention_path=None, top_k=5, lens=False, seed=1):
    """Trace lines for ids[:n_prompt] as the prompt and the rest as steps."""
    rng = np.random.default_rng(seed)
    with open(path, "w", encoding="utf-8") as f:
        head = {"type": "prompt", "model": "synthetic", "n_layer": n_layer, "n_head": n_head, "n_vocab": 1000,
                "top_k": top_k, "attention": attention_path,
                "tokens": [{"pos": p, "id": int(ids[p]), "text": token_text(int(ids[p])),
                            **({"hex": "e282"} if token_text(int(ids[p])) == "\ufffd" else {})} for p in range(n_prompt)]}
        f.write(json.dumps(head, ensure_ascii=False) + "\n")
        for p in range(n_prompt, len(ids)):
            probs = np.sort(rng.dirichlet(np.ones(top_k + 3)))[::-1][:top_k]
            cand = [int(ids[p])] + [int(x) for x in rng.choice(1000, top_k - 1, replace=False) if x != ids[p]][:top_k - 1]
            step = {"type": "step", "pos": p, "id": int(ids[p]), "text": token_text(int(ids[p])),
                    **({"hex": "e282"} if token_text(int(ids[p])) == "\ufffd" else {}),
                    "logprob": float(np.log(probs[0])), "entropy": float(-(probs * np.log(probs)).sum()),
                    "top": [{"id": c, "text": token_text(c), "p": float(q)} for c, q in zip(cand, probs)]}
            if lens:
                step["lens"] = [{"layer": l, "top": [{"id": c, "text": token_text(c), "p": float(q)}
                                                     for c, q in zip(cand[:3], probs[:3])]} for l in range(n_layer)]
            f.write(json.dumps(step, ensure_ascii=False) + "\n")


def make_case(outdir, n_layer, n_head, T, n_prompt, n_rows=None, seed=0, lens=True, dtype=np.float16):
    """Writes trace.jsonl and attn.bin; returns (trace, attention, packed, ids).
    n_rows < T leaves the last tokens without attention rows (a last sampled
    token is never run through the model)."""
    n_rows = T if n_rows is None else n_rows
    rng = np.random.default_rng(seed + 100)
    ids = rng.integers(0, 1000, size=T)
    ids[0] = 21  # no text, like a BOS
    ids[1:5] = [17, 9, 10, 11][:max(0, min(4, T - 1))]  # "</script>", " <script>", " &amp;", "\n" early on
    if n_prompt + 1 < T:
        ids[n_prompt + 1] = 20  # a generated token that is not valid UTF-8 on its own
    packed = make_attention(n_layer, n_head, n_rows, seed, dtype)
    trace, att = os.path.join(outdir, "trace.jsonl"), os.path.join(outdir, "attn.bin")
    write_attention(att, packed, ids, min(n_prompt, n_rows))
    write_trace(trace, n_layer, n_head, ids, n_prompt, attention_path="attn.bin", lens=lens)
    return trace, att, packed, ids


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("outdir")
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--tokens", type=int, default=40)
    ap.add_argument("--prompt", type=int, default=None)
    a = ap.parse_args()
    os.makedirs(a.outdir, exist_ok=True)
    trace, att, _, _ = make_case(a.outdir, a.layers, a.heads, a.tokens, a.prompt or a.tokens // 2, a.tokens - 1)
    print(trace, att)
