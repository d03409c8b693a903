#!/usr/bin/env python3
"""Train the bundled GPT-2 model on the Brown corpus (PyTorch; CPU or --device cuda).

Architecture: GPT-2 exactly -- learned token and position embeddings, pre-LN
blocks (ln_1 -> causal multi-head attention -> residual, ln_2 -> MLP with the
tanh GELU ("gelu_new") -> residual), final LayerNorm, LM head tied to the token
embedding, biases everywhere, LayerNorm eps 1e-5.

Data: the train split (model/train_out/data/brown_train.txt, from
prepare_data.py) is encoded as ONE string with the SentencePiece model
(tokenizer.model, from train_tokenizer.py), giving one token stream; paragraph
breaks are the byte token <0x0A>. A training sample starts at a random stream
offset k (seeded generator): input = [BOS] + s[k : k+T-1], target = s[k : k+T].

Validation protocol (what `final_metrics.json` reports and what the C++
perplexity must reproduce):
  1. ids = SentencePiece encode of the whole validation file's text as one
     string (no BOS/EOS added; the file's newlines are kept and encode as <0x0A>).
  2. Cut ids into consecutive non-overlapping chunks of T = n_ctx tokens
     (the last chunk may be shorter; none is dropped).
  3. For each chunk c (length m), run the model from an empty context on
     [BOS] + c[0 : m-1] and score every token: NLL_i = -ln p(c[i] | BOS, c[0:i]).
  4. val_loss = (sum of all NLL_i) / len(ids), natural log; PPL = exp(val_loss).
  So every validation token is predicted exactly once, the first of each chunk
  from BOS alone, the others from whatever precedes them inside the chunk.

Time budget: --minutes M plans a cosine LR schedule (linear warm-up, cosine
decay to lr/10) over a step count estimated from the measured speed of the
first steps. When the machine's speed changes (other jobs), the plan is
re-planned (every --replan-minutes, when off by more than 3%) so the run still
ends on time, and a hard stop at 103% of the budget; re-plans are logged and
listed in final_metrics.json. --steps N fixes
the step count instead, which makes a run exactly reproducible from --seed.

Outputs under --out (default model/train_out):
  train_log.csv     step, tokens, elapsed, lr, train loss, val loss, tokens/s
  ckpt.pt           torch checkpoint, rewritten every --ckpt-minutes
  hf/               Hugging Face GPT-2 folder (config.json, model.safetensors,
                    tokenizer.model), rewritten at every checkpoint and at the end
  hf/final_metrics.json   written at the end
"""
import argparse
import csv
import json
import math
import os
import shutil
import struct
import sys
import time

import numpy as np
import sentencepiece as spm
import torch
import torch.nn as nn
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OUT = os.path.join(ROOT, "model", "train_out")
BOS_ID = 1
EOS_ID = 2
LN_EPS = 1e-5


# ---------------------------------------------------------------- model

class Block(nn.Module):
    """One pre-LN GPT-2 block. Linear weights are (out, in) as nn.Linear stores them."""

    def __init__(self, n_embd, n_head, dropout, attn_dropout):
        super().__init__()
        self.n_head = n_head
        self.ln_1 = nn.LayerNorm(n_embd, eps=LN_EPS)
        self.c_attn = nn.Linear(n_embd, 3 * n_embd)     # (3d, d)
        self.attn_proj = nn.Linear(n_embd, n_embd)      # (d, d)
        self.ln_2 = nn.LayerNorm(n_embd, eps=LN_EPS)
        self.c_fc = nn.Linear(n_embd, 4 * n_embd)       # (4d, d)
        self.mlp_proj = nn.Linear(4 * n_embd, n_embd)   # (d, 4d)
        self.drop = nn.Dropout(dropout)
        self.attn_drop = nn.Dropout(attn_dropout)

    def forward(self, x, mask):
        B, T, C = x.shape
        hd = C // self.n_head
        q, k, v = self.c_attn(self.ln_1(x)).split(C, dim=2)
        q = q.view(B, T, self.n_head, hd).transpose(1, 2)      # (B, H, T, hd)
        k = k.view(B, T, self.n_head, hd).transpose(1, 2)
        v = v.view(B, T, self.n_head, hd).transpose(1, 2)
        scores = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(hd))
        scores = scores.masked_fill(mask[:T, :T], float("-inf"))
        att = self.attn_drop(F.softmax(scores, dim=-1))
        z = (att @ v).transpose(1, 2).reshape(B, T, C)
        x = x + self.drop(self.attn_proj(z))
        h = F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh")  # gelu_new
        return x + self.drop(self.mlp_proj(h))


class GPT2(nn.Module):
    def __init__(self, vocab_size, n_ctx, n_embd, n_layer, n_head, dropout=0.0, attn_dropout=None):
        super().__init__()
        assert n_embd % n_head == 0
        self.cfg = dict(vocab_size=vocab_size, n_ctx=n_ctx, n_embd=n_embd,
                        n_layer=n_layer, n_head=n_head, dropout=dropout,
                        attn_dropout=dropout if attn_dropout is None else attn_dropout)
        self.wte = nn.Embedding(vocab_size, n_embd)
        self.wpe = nn.Embedding(n_ctx, n_embd)
        self.drop = nn.Dropout(dropout)
        self.h = nn.ModuleList(Block(n_embd, n_head, dropout, self.cfg["attn_dropout"]) for _ in range(n_layer))
        self.ln_f = nn.LayerNorm(n_embd, eps=LN_EPS)
        self.register_buffer("mask", torch.triu(torch.ones(n_ctx, n_ctx, dtype=torch.bool), 1),
                             persistent=False)
        # GPT-2 initialisation: N(0, 0.02), residual projections scaled by 1/sqrt(2L).
        for name, p in self.named_parameters():
            if name.endswith(".bias"):
                nn.init.zeros_(p)
            elif "ln_" in name:
                nn.init.ones_(p)
            elif name.endswith("proj.weight"):
                nn.init.normal_(p, 0.0, 0.02 / math.sqrt(2 * n_layer))
            else:
                nn.init.normal_(p, 0.0, 0.02)

    def forward(self, idx):
        T = idx.shape[1]
        x = self.drop(self.wte(idx) + self.wpe(torch.arange(T, device=idx.device)))
        for block in self.h:
            x = block(x, self.mask)
        return self.ln_f(x) @ self.wte.weight.t()    # tied LM head: (B, T, vocab)


# ---------------------------------------------------------------- export

def hf_state(model):
    """Tensors named and shaped as Hugging Face GPT2LMHeadModel stores them.
    HF's Conv1D keeps weights as (in, out), the transpose of nn.Linear's (out, in)."""
    out = {"transformer.wte.weight": model.wte.weight,
           "transformer.wpe.weight": model.wpe.weight}
    for i, b in enumerate(model.h):
        p = f"transformer.h.{i}."
        out[p + "ln_1.weight"] = b.ln_1.weight
        out[p + "ln_1.bias"] = b.ln_1.bias
        out[p + "attn.c_attn.weight"] = b.c_attn.weight.t()    # (d, 3d)
        out[p + "attn.c_attn.bias"] = b.c_attn.bias
        out[p + "attn.c_proj.weight"] = b.attn_proj.weight.t()  # (d, d)
        out[p + "attn.c_proj.bias"] = b.attn_proj.bias
        out[p + "ln_2.weight"] = b.ln_2.weight
        out[p + "ln_2.bias"] = b.ln_2.bias
        out[p + "mlp.c_fc.weight"] = b.c_fc.weight.t()          # (d, 4d)
        out[p + "mlp.c_fc.bias"] = b.c_fc.bias
        out[p + "mlp.c_proj.weight"] = b.mlp_proj.weight.t()    # (4d, d)
        out[p + "mlp.c_proj.bias"] = b.mlp_proj.bias
    out["transformer.ln_f.weight"] = model.ln_f.weight
    out["transformer.ln_f.bias"] = model.ln_f.bias
    return {k: v.detach().to("cpu", torch.float32).contiguous().numpy() for k, v in out.items()}


def write_safetensors(path, tensors):
    """safetensors by hand: u64 LE header length, JSON header, raw LE F32 data."""
    header, offset, blobs = {"__metadata__": {"format": "pt"}}, 0, []
    for name in sorted(tensors):
        data = np.ascontiguousarray(tensors[name], dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(tensors[name].shape),
                        "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    head = json.dumps(header, separators=(",", ":")).encode("utf-8")
    head += b" " * (-len(head) % 8)     # data starts 8-byte aligned
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(head)))
        f.write(head)
        for blob in blobs:
            f.write(blob)
    os.replace(tmp, path)


def export_hf(model, folder, tokenizer_path, extra=None):
    os.makedirs(folder, exist_ok=True)
    c = model.cfg
    config = {
        "architectures": ["GPT2LMHeadModel"], "model_type": "gpt2",
        "vocab_size": c["vocab_size"], "n_positions": c["n_ctx"], "n_ctx": c["n_ctx"],
        "n_embd": c["n_embd"], "n_layer": c["n_layer"], "n_head": c["n_head"],
        "n_inner": None, "activation_function": "gelu_new",
        "layer_norm_epsilon": LN_EPS, "initializer_range": 0.02,
        "resid_pdrop": c["dropout"], "embd_pdrop": c["dropout"], "attn_pdrop": c["attn_dropout"],
        "scale_attn_weights": True, "tie_word_embeddings": True,
        "bos_token_id": BOS_ID, "eos_token_id": EOS_ID, "torch_dtype": "float32",
        "tokenizer_class": "sentencepiece (tokenizer.model, BPE, byte fallback)",
    }
    if extra:
        config["minigpt_training"] = extra
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
        f.write("\n")
    write_safetensors(os.path.join(folder, "model.safetensors"), hf_state(model))
    shutil.copyfile(tokenizer_path, os.path.join(folder, "tokenizer.model"))


# ---------------------------------------------------------------- data and eval

def encode_file(sp, path):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    return torch.tensor(sp.encode(text), dtype=torch.long)


def sample_batch(stream, batch, T, gen, repeat_frac=0.0, repeat_max=0.25):
    """Random windows of the stream (on the stream's device); the offsets come from the
    CPU generator `gen`, so a seed gives the same batches on any device.

    With repeat_frac > 0, that fraction of the rows is a span s of the stream (L tokens,
    8 <= L <= repeat_max * T) written twice and followed by the text that follows s: [s, s, next].
    Natural text repeats itself too rarely in a 1.6 M-token corpus for a small model to
    learn in-context copying (induction heads) within a short budget; the repeats make
    copying pay off. Validation is always plain text."""
    starts = torch.randint(0, len(stream) - T, (batch,), generator=gen)
    pos = starts[:, None] + torch.arange(T)
    n_rep = int(round(repeat_frac * batch))
    if n_rep:
        hi = max(1, min(T // 2, int(repeat_max * T)))
        lo = min(8, hi)
        L = torch.randint(lo, hi + 1, (n_rep,), generator=gen)
        j = torch.arange(T)[None, :]
        # position j of a repeated row reads s[j] for j < L, then stream[start + j - L]: s again and its continuation
        offset = torch.where(j < L[:, None], j, j - L[:, None])
        pos[:n_rep] = starts[:n_rep, None] + offset
    y = stream[pos.to(stream.device)]
    x = torch.cat([torch.full((batch, 1), BOS_ID, dtype=torch.long, device=stream.device), y[:, :-1]], dim=1)
    return x, y


@torch.no_grad()
def chunked_nll(model, ids, T, max_chunks=None, batch=16):
    """The validation protocol in the module docstring. Returns (sum NLL, tokens scored)."""
    was_training = model.training
    model.eval()
    chunks = [ids[i:i + T] for i in range(0, len(ids), T)]
    if max_chunks is not None:
        chunks = chunks[:max_chunks]
    total, count = 0.0, 0
    full = [c for c in chunks if len(c) == T]
    tail = [c for c in chunks if len(c) < T]
    groups = [full[i:i + batch] for i in range(0, len(full), batch)] + [[c] for c in tail]
    for group in groups:
        y = torch.stack(group)
        x = torch.cat([torch.full((len(group), 1), BOS_ID, dtype=torch.long, device=y.device), y[:, :-1]], dim=1)
        logits = model(x)
        nll = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).double(), y.reshape(-1),
                              reduction="sum")
        total += nll.item()
        count += y.numel()
    model.train(was_training)
    return total, count


# ---------------------------------------------------------------- training

def lr_at(step, total, warmup, lr_max, lr_min):
    if step < warmup:
        return lr_max * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return lr_min + 0.5 * (lr_max - lr_min) * (1.0 + math.cos(math.pi * progress))


def make_optimizer(model, lr, weight_decay):
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    return torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}],
                             lr=lr, betas=(0.9, 0.95), eps=1e-8)


def log(msg):
    print(time.strftime("%H:%M:%S ") + msg, file=sys.stderr, flush=True)


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data-dir", default=os.path.join(DEFAULT_OUT, "data"))
    ap.add_argument("--tokenizer", default=os.path.join(DEFAULT_OUT, "tokenizer.model"))
    ap.add_argument("--out", default=DEFAULT_OUT)
    ap.add_argument("--n-layer", type=int, default=4)
    ap.add_argument("--n-head", type=int, default=4)
    ap.add_argument("--n-embd", type=int, default=256)
    ap.add_argument("--n-ctx", type=int, default=256)
    ap.add_argument("--batch", type=int, default=8, help="sequences per step")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--min-lr-ratio", type=float, default=0.1)
    ap.add_argument("--warmup", type=int, default=100, help="warm-up steps")
    ap.add_argument("--weight-decay", type=float, default=0.1)
    ap.add_argument("--grad-clip", type=float, default=1.0)
    ap.add_argument("--dropout", type=float, default=0.0, help="embedding and residual dropout")
    ap.add_argument("--attn-dropout", type=float, default=None,
                    help="dropout on attention weights (default: --dropout); 0 keeps heads sharp")
    ap.add_argument("--repeat-frac", type=float, default=0.0,
                    help="fraction of training rows that repeat a span of text (see sample_batch)")
    ap.add_argument("--repeat-max", type=float, default=0.25,
                    help="longest repeated span, as a fraction of the context (at most 0.5)")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu", help="cpu, or cuda for a GPU (TF32 matrix products)")
    ap.add_argument("--keep-best", action="store_true",
                    help="evaluate the full validation split at every --eval-every and end with the "
                         "weights of the best evaluation (early stopping; the final metrics say which step)")
    ap.add_argument("--minutes", type=float, default=None, help="training time budget")
    ap.add_argument("--steps", type=int, default=None, help="fixed step count (reproducible)")
    ap.add_argument("--plan-after", type=int, default=30,
                    help="steps timed before planning the step count from --minutes")
    ap.add_argument("--replan-minutes", type=float, default=3.0,
                    help="how often the step count is re-planned from the measured speed")
    ap.add_argument("--log-every", type=int, default=10)
    ap.add_argument("--eval-every", type=int, default=200)
    ap.add_argument("--eval-chunks", type=int, default=40,
                    help="validation chunks used by the periodic (not the final) evaluation")
    ap.add_argument("--ckpt-minutes", type=float, default=10.0)
    ap.add_argument("--init-from", metavar="CKPT", default=None,
                    help="start from the weights of a ckpt.pt written by an earlier run (a second stage: "
                         "fresh optimizer, warm-up and cosine schedule; the data order follows --seed)")
    ap.add_argument("--probe", type=int, default=0,
                    help="only time this many steps and print tokens/s (no outputs)")
    args = ap.parse_args(argv)
    if not args.probe and (args.minutes is None) == (args.steps is None):
        ap.error("give exactly one of --minutes or --steps")
    return args


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    if args.device.startswith("cuda"):
        # cuBLAS is deterministic only with a fixed workspace; TF32 products are ample for training.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cuda.matmul.allow_tf32 = True
    torch.use_deterministic_algorithms(True, warn_only=args.device != "cpu")
    device = torch.device(args.device)
    sp = spm.SentencePieceProcessor(model_file=args.tokenizer)
    model = GPT2(sp.get_piece_size(), args.n_ctx, args.n_embd, args.n_layer, args.n_head,
                 args.dropout, args.attn_dropout)
    if args.init_from:
        model.load_state_dict(torch.load(args.init_from, map_location="cpu")["model"])
        log(f"initialised from {args.init_from}")
    model.to(device)
    n_params = sum(p.numel() for p in model.parameters())
    opt = make_optimizer(model, args.lr, args.weight_decay)
    gen = torch.Generator().manual_seed(args.seed)
    T, B = args.n_ctx, args.batch

    if args.probe:
        stream = torch.randint(3, sp.get_piece_size(), (200000,), generator=gen).to(device)
        for step in range(args.probe + 2):
            if step == 2:
                t0 = time.time()
            x, y = sample_batch(stream, B, T, gen)
            loss = F.cross_entropy(model(x).reshape(-1, sp.get_piece_size()), y.reshape(-1))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        loss.item()  # waits for the device
        tps = args.probe * B * T / (time.time() - t0)
        print(f"probe L={args.n_layer} H={args.n_head} d={args.n_embd} T={T} B={B} "
              f"params={n_params} tokens/s={tps:.0f} s/step={B * T / tps:.3f}")
        return

    train_ids = encode_file(sp, os.path.join(args.data_dir, "brown_train.txt")).to(device)
    val_ids = encode_file(sp, os.path.join(args.data_dir, "brown_val.txt")).to(device)
    log(f"train tokens {len(train_ids)}, val tokens {len(val_ids)}, params {n_params}, "
        f"shape L={args.n_layer} H={args.n_head} d={args.n_embd} T={T} B={B}")
    os.makedirs(args.out, exist_ok=True)
    hf_dir = os.path.join(args.out, "hf")
    csv_file = open(os.path.join(args.out, "train_log.csv"), "w", newline="")
    writer = csv.writer(csv_file)
    writer.writerow(["step", "tokens", "elapsed_s", "lr", "train_loss", "val_loss", "tokens_per_s"])
    command = " ".join([os.path.basename(sys.executable), "scripts/train.py"] + sys.argv[1:])
    training_info = dict(vars(args), command=command)

    total = args.steps if args.steps is not None else None
    budget_s = args.minutes * 60 if args.minutes is not None else None
    replans = []
    best = None  # (full validation loss, step, weights on the CPU) with --keep-best
    t_start = time.time()
    last_ckpt = last_replan_check = t_start
    run_loss, run_n, t_log, step = 0.0, 0, t_start, 0

    def save_checkpoint(tag):
        torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "step": step,
                    "args": vars(args), "gen": gen.get_state()},
                   os.path.join(args.out, "ckpt.pt"))
        export_hf(model, hf_dir, args.tokenizer, dict(training_info, step=step, saved=tag))
        log(f"checkpoint at step {step} ({tag}) -> {hf_dir}")

    while total is None or step < total:
        if total is None and step == args.plan_after:
            per_step = (time.time() - t_start) / step
            total = max(step + 1, int(budget_s / per_step))
            log(f"planned {total} steps from {per_step:.3f} s/step over {args.minutes} min")
        lr = lr_at(step, total or 10 ** 9, args.warmup, args.lr, args.lr * args.min_lr_ratio)
        for g in opt.param_groups:
            g["lr"] = lr
        x, y = sample_batch(train_ids, B, T, gen, args.repeat_frac, args.repeat_max)
        logits = model(x)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), args.grad_clip)
        opt.step()
        step += 1
        run_loss += loss.item()
        run_n += 1

        if step % args.log_every == 0 or step == total:
            now = time.time()
            elapsed = now - t_start
            tps = run_n * B * T / (now - t_log)
            val = ""
            if step % args.eval_every == 0 or step == total:
                s, n = chunked_nll(model, val_ids, T, max_chunks=None if args.keep_best else args.eval_chunks)
                val = f"{s / n:.4f}"
                if args.keep_best and (best is None or s / n < best[0]):
                    best = (s / n, step, {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()})
            eta = (total - step) * elapsed / step if total else float("nan")
            writer.writerow([step, step * B * T, f"{elapsed:.1f}", f"{lr:.3e}",
                             f"{run_loss / run_n:.4f}", val, f"{tps:.0f}"])
            csv_file.flush()
            log(f"step {step}/{total} train {run_loss / run_n:.4f}"
                + (f" val(subset) {val}" if val else "")
                + f" lr {lr:.2e} {tps:.0f} tok/s elapsed {elapsed / 60:.1f} min ETA {eta / 60:.1f} min")
            run_loss, run_n, t_log = 0.0, 0, time.time()
            # A shared machine changes speed: every --replan-minutes, re-plan the step count
            # so the schedule still ends on the budget (both directions, if off by > 3%).
            if (budget_s is not None and step > args.plan_after and step < total
                    and now - last_replan_check > args.replan_minutes * 60):
                last_replan_check = now
                new_total = max(step + 1, int(budget_s * step / elapsed))
                if abs(new_total - total) > 0.03 * total:
                    replans.append([step, total, new_total])
                    log(f"re-plan at step {step}: {total} -> {new_total} steps")
                    total = new_total
            if budget_s is not None and elapsed > budget_s * 1.03:
                log(f"time budget exceeded at step {step}: stopping")
                break
        if time.time() - last_ckpt > args.ckpt_minutes * 60:
            save_checkpoint("periodic")
            last_ckpt = time.time()

    train_seconds = time.time() - t_start
    kept_step = step
    if best is not None and best[1] != step:
        model.load_state_dict(best[2])
        kept_step = best[1]
        log(f"--keep-best: ending with the weights of step {kept_step} (validation loss {best[0]:.4f})")
    log("final evaluation (full validation split)")
    val_sum, val_n = chunked_nll(model, val_ids, T)
    tr_sum, tr_n = chunked_nll(model, train_ids[:len(val_ids)], T)
    metrics = {
        "validation_loss": val_sum / val_n, "validation_perplexity": math.exp(val_sum / val_n),
        "validation_tokens": val_n,
        "train_loss": tr_sum / tr_n,
        "train_loss_note": "same protocol on the first len(validation) tokens of the train stream",
        "protocol": "ids = SentencePiece encode of the whole validation file as one string "
                    "(no BOS/EOS); consecutive non-overlapping chunks of n_ctx tokens, last "
                    "chunk shorter; each chunk c evaluated from empty context on [BOS]+c[:-1], "
                    "every token of c scored; loss = sum NLL (natural log) / len(ids); "
                    "perplexity = exp(loss)",
        "parameters": n_params, "steps": step, "weights_of_step": kept_step, "tokens_seen": step * B * T,
        "epochs": step * B * T / len(train_ids), "training_seconds": train_seconds,
        "replans": replans, "command": command, "seed": args.seed,
        "shape": {"n_layer": args.n_layer, "n_head": args.n_head, "n_embd": args.n_embd,
                  "n_ctx": T, "vocab_size": sp.get_piece_size()},
    }
    save_checkpoint("final")
    with open(os.path.join(hf_dir, "final_metrics.json"), "w") as f:
        json.dump(metrics, f, indent=2)
        f.write("\n")
    log(f"done: val loss {metrics['validation_loss']:.4f} ppl "
        f"{metrics['validation_perplexity']:.3f} train loss {metrics['train_loss']:.4f} "
        f"in {train_seconds / 60:.1f} min")


if __name__ == "__main__":
    main()
