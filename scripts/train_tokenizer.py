#!/usr/bin/env python3
"""Train the bundled model's SentencePiece BPE tokenizer on the Brown train split.

Settings and why:
  model_type=bpe, vocab_size=4096   ~1M words of training text: a small vocabulary
                                    keeps every piece frequent enough to be learned
                                    and the embedding table small (4096 x n_embd)
  byte_fallback=true                any byte sequence encodes (no <unk> in practice)
  normalization_rule_name=identity  text is kept byte for byte (no NFKC)
  remove_extra_whitespaces=false    runs of spaces survive encode/decode
  split_digits=true                 numbers are read digit by digit
  character_coverage=1.0            every character of the train split gets a piece
  unk=0, bos=1, eos=2, pad=-1       the llama/SentencePiece convention
  num_threads=1, fixed seed         the same input gives the same model file
Training lines are whole paragraphs, so max_sentence_length is raised above
the longest paragraph (the default 4192 bytes would silently drop some).

Usage: train_tokenizer.py [--input brown_train.txt] [--out-prefix PREFIX]
Writes PREFIX.model and PREFIX.vocab.
"""
import argparse
import os
import sys

import sentencepiece as spm

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_INPUT = os.path.join(ROOT, "model", "train_out", "data", "brown_train.txt")
DEFAULT_PREFIX = os.path.join(ROOT, "model", "train_out", "tokenizer")
VOCAB_SIZE = 4096

# The settings above that every SentencePiece model of ours shares: this script's and
# the golden test models of gen_sentencepiece_tokenizer_golden.py.
SHARED_SETTINGS = dict(
    model_type="bpe",
    byte_fallback=True,
    normalization_rule_name="identity",
    remove_extra_whitespaces=False,
    character_coverage=1.0,
    unk_id=0, bos_id=1, eos_id=2, pad_id=-1,
    input_sentence_size=0,          # use every line, no sampling
    shuffle_input_sentence=False,
    num_threads=1,
    seed_sentencepiece_size=1000000,
)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--input", default=DEFAULT_INPUT)
    ap.add_argument("--out-prefix", default=DEFAULT_PREFIX)
    ap.add_argument("--vocab-size", type=int, default=VOCAB_SIZE)
    args = ap.parse_args(argv)

    with open(args.input, encoding="utf-8") as f:
        longest = max(len(line.encode("utf-8")) for line in f)
    os.makedirs(os.path.dirname(os.path.abspath(args.out_prefix)), exist_ok=True)
    spm.SentencePieceTrainer.train(
        input=args.input,
        model_prefix=args.out_prefix,
        vocab_size=args.vocab_size,
        split_digits=True,
        max_sentence_length=longest + 1,
        minloglevel=1,
        **SHARED_SETTINGS,
    )
    sp = spm.SentencePieceProcessor(model_file=args.out_prefix + ".model")
    sample = "The jury said, \"It's 1961\"\n  twice."
    ids = sp.encode(sample)
    if sp.decode(ids) != sample:
        raise SystemExit(f"round trip failed: {sample!r} -> {sp.decode(ids)!r}")
    print(f"{args.out_prefix}.model: vocab {sp.get_piece_size()}, "
          f"longest paragraph {longest} bytes", file=sys.stderr)


if __name__ == "__main__":
    main()
