#!/usr/bin/env python3
"""Trains two tiny SentencePiece BPE models and writes golden ids from the library.

Reference: Debian's python3-sentencepiece 0.1.97 (the same library version as
libsentencepiece-dev, which minigpt links). Outputs under tests/data/tokenizer/:

  spm_bpe.model           vocab 500, BPE, byte_fallback, identity normalizer,
                          remove_extra_whitespaces=false, add_dummy_prefix=true
                          (the llama settings that matter for decoding)
  spm_bpe_noprefix.model  the same with add_dummy_prefix=false
  spm_cases.tsv           model, case name, text (UTF-8 hex), ids from
                          sp.encode(text) (no BOS/EOS), and sp.decode(ids) in hex
  spm_decode.tsv          model, case name, ids (with BOS/EOS and byte pieces
                          that make invalid UTF-8), and sp.decode(ids) in hex

Training text: the first 200 kB of tests/data/tokenizer/gpt2_brown.txt plus a few
lines of French, German, Russian and Greek, so that common Latin/Cyrillic/Greek
letters get pieces while CJK, Thai, emoji and rare symbols fall back to bytes.
Training is single-threaded with a fixed seed, so the models are reproducible.

Usage: /usr/bin/python3 scripts/gen_sentencepiece_tokenizer_golden.py
"""
import os
import sys
import tempfile

import sentencepiece as spm

import train_tokenizer  # the SentencePiece settings our models share (SHARED_SETTINGS)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "data", "tokenizer")

EXTRA_TRAINING_LINES = [
    "Le café est très bon, mais la crème brûlée est meilleure. Où est la gare ?",
    "Straße, Größe, Mädchen und Bücher: Übung macht den Meister.",
    "Привет, мир! Съешь же ещё этих мягких французских булок, да выпей чаю.",
    "Καλημέρα κόσμε. Η γλώσσα είναι ελληνική.",
]

CASES = [
    ("empty", ""),
    ("word", "hello"),
    ("sentence", "The old man looked at the sea."),
    ("leading_space", " leading space"),
    ("leading_spaces", "   three leading spaces"),
    ("trailing_spaces", "trailing spaces   "),
    ("only_spaces", "     "),
    ("space_runs", "a  b   c    d"),
    ("newlines", "line one\nline two\n\nline four\n"),
    ("crlf", "windows\r\nline\r\n"),
    ("tabs", "col1\tcol2\t\tcol4\t"),
    ("digits", "In 1999 there were 12,345 cars and 3.14 pies."),
    ("contractions", "don't, I'm, we'll, they're, she's"),
    ("punctuation", "Wait... what?! (Really) [yes] {no} <maybe> -- done."),
    ("accented", "café crème brûlée naïve résumé Ångström"),
    ("german", "Die Straße ist groß."),
    ("cyrillic", "Привет, мир!"),
    ("greek", "Καλημέρα κόσμε"),
    ("cjk", "你好，世界。日本語のテキスト"),
    ("korean", "안녕하세요"),
    ("thai", "สวัสดีครับ"),
    ("emoji", "I ❤️ tokenizers 🤖👍🏽"),
    ("zwj_family", "👨‍👩‍👧‍👦"),
    ("combining", "e\u0301 a\u0300\u0301"),
    ("unicode_spaces", "nbsp\u00A0em\u2003ideo\u3000zw\u200Bend"),
    ("control_chars", "bell\x07 esc\x1b del\x7f"),
    ("math", "𝐀𝐁𝐂 ∑∫√"),
    ("rare_symbols", "⅋ ⌘ ☃ ♞ ⚙"),
    ("mixed", "Mixed: naïve café — 東京 🚀\n\tIndented line with  two spaces."),
    ("special_text", "<s> and </s> and <unk> are just text here"),
    # Invalid UTF-8 (given to the library as bytes): SentencePiece encodes each
    # malformed byte as U+FFFD, so decode(encode(x)) != x for these.
    ("invalid_ff", b"a\xffb"),
    ("invalid_truncated", b"x\xe2\x82"),
    ("invalid_lone_continuation", b"\x80abc"),
    ("invalid_overlong", b"\xc0\xafz"),
    ("invalid_surrogate", b"\xed\xa0\x80!"),
]


def train(path_prefix, text_path, add_dummy_prefix):
    spm.SentencePieceTrainer.train(
        input=text_path,
        model_prefix=path_prefix,
        vocab_size=500,
        add_dummy_prefix=add_dummy_prefix,
        minloglevel=2,
        **train_tokenizer.SHARED_SETTINGS,
    )


def main():
    with open(os.path.join(OUT, "gpt2_brown.txt"), encoding="utf-8") as f:
        brown = f.read(200_000)
    lines = [line for line in brown.split("\n") if line.strip()] + EXTRA_TRAINING_LINES
    case_rows = ["# model\tname\ttext (UTF-8, hex)\tsentencepiece 0.1.97 ids\tdecode(ids) (UTF-8, hex)"]
    decode_rows = ["# model\tname\tids\tsentencepiece 0.1.97 decode(ids) (UTF-8, hex)"]
    # The trainer records its input and output paths in the model: train in a
    # scratch folder under fixed relative names so that the bytes are reproducible.
    cwd = os.getcwd()
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)
        with open("train.txt", "w", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")
        for name, dummy in (("spm_bpe", True), ("spm_bpe_noprefix", False)):
            train(name, "train.txt", dummy)
            with open(name + ".model", "rb") as f:
                model_bytes = f.read()
            with open(os.path.join(OUT, name + ".model"), "wb") as f:
                f.write(model_bytes)
            sp = spm.SentencePieceProcessor(model_proto=model_bytes)
            n_bytes_used = 0
            for case, text in CASES:
                ids = sp.encode(text)
                n_bytes_used += sum(1 for i in ids if sp.is_byte(i))
                raw = text if isinstance(text, bytes) else text.encode("utf-8")
                case_rows.append("\t".join([name, case, raw.hex(), " ".join(map(str, ids)),
                                            sp.decode(ids).encode("utf-8").hex()]))
            byte = lambda b: sp.piece_to_id(f"<0x{b:02X}>")
            hello, world = sp.encode("hello"), sp.encode(" world")
            decode_cases = [
                ("bos_eos", [sp.bos_id()] + hello + world + [sp.eos_id()]),
                ("bos_then_space_word", [sp.bos_id()] + sp.encode(" x")),
                ("unk", [sp.unk_id()] + hello),
                ("lone_continuation_byte", hello + [byte(0x80)] + world),
                ("truncated_sequence", hello + [byte(0xE2), byte(0x82)]),
                ("invalid_lead_byte", [byte(0xFF), byte(0x41)] + hello),
                ("euro_by_bytes", [byte(0xE2), byte(0x82), byte(0xAC)] + world),
            ]
            for case, ids in decode_cases:
                decode_rows.append("\t".join([name, case, " ".join(map(str, ids)), sp.decode(ids).encode("utf-8").hex()]))
            print(f"{name}.model: {len(model_bytes)} bytes, {sp.get_piece_size()} pieces; "
                  f"{n_bytes_used} byte-fallback ids over {len(CASES)} cases", file=sys.stderr)
        os.chdir(cwd)
    with open(os.path.join(OUT, "spm_cases.tsv"), "w", encoding="utf-8", newline="\n") as f:
        f.write("\n".join(case_rows) + "\n")
    with open(os.path.join(OUT, "spm_decode.tsv"), "w", encoding="utf-8", newline="\n") as f:
        f.write("\n".join(decode_rows) + "\n")


if __name__ == "__main__":
    main()
