"""scripts/convert.py's readers of nanoGPT, llm.c and character vocabularies, and the
errors for checkpoints it must refuse (issue 17).

Checkpoints are written by tests/e2e/checkpoint_writers.py as nanoGPT's train.py and
llm.c's write_model write them (torch.save, torch's bf16); the values expected in the
GGUF come from torch (torch.load, the module's parameters), not from our readers; the
character vocabulary is checked against the sentencepiece library itself.
"""
import contextlib
import io
import json
import os
import pickle
import shutil
import struct
import subprocess
import sys
import tempfile
import unittest
import zipfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPTS = os.path.join(ROOT, "scripts")
sys.path.insert(0, SCRIPTS)
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
from helpers import require  # noqa: E402  (missing engines: skip with how to install, fail in CI)
import char_vocab  # noqa: E402
import checkpoint_writers as cw  # noqa: E402
import convert  # noqa: E402
from gguf import GGUFReader  # noqa: E402
from torch_pickle import CheckpointError, LazyTensor, TorchArchive  # noqa: E402

try:
    import torch
except ImportError:
    torch = None
try:
    import sentencepiece
except ImportError:
    sentencepiece = None

SMALL = dict(n_layer=2, n_head=2, n_embd=16, block_size=32, vocab_size=0, bias=True)
TEXT = "First Citizen:\nBefore we proceed any further, hear me speak.\nAll:\nSpeak, speak. 3 & $ - ?!\n"


def convert_py(*args):
    return subprocess.run([sys.executable, os.path.join(SCRIPTS, "convert.py"), *map(str, args)],
                          capture_output=True, text=True, timeout=300)


class Tmp(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.out = os.path.join(self.tmp.name, "out.gguf")

    def tearDown(self):
        self.tmp.cleanup()

    def p(self, name):
        return os.path.join(self.tmp.name, name)

    def assert_refused(self, pattern, src, *args):
        p = convert_py(src, self.out, *args)
        print(f"\n  refused: {p.stderr.strip()}")
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertNotIn("Traceback", p.stderr)
        self.assertEqual(len(p.stderr.strip().splitlines()), 1, "expected one error line")
        self.assertRegex(p.stderr, pattern)
        self.assertIn(str(src), p.stderr)
        self.assertFalse([n for n in os.listdir(self.tmp.name) if n.startswith("out.gguf")], "output left behind")


class NanoGPTCheckpoint(Tmp):
    def setUp(self):
        require("torch")  # the checkpoints are written with torch.save
        super().setUp()

    def write(self, name="ckpt.pt", **kw):
        args = dict(SMALL, vocab_size=kw.pop("vocab_size", 50304), bias=kw.pop("bias", True))
        model = cw.make_nanogpt(args, seed=kw.pop("seed", 3))
        path = self.p(name)
        cw.save_nanogpt(path, model, args, dataset="openwebtext", **kw)
        return model, path

    def test_what_torch_save_wrote_is_read_without_torch_and_equals_torch_load(self):
        _, path = self.write(best_val_loss=np.float64(1.25))
        ck = TorchArchive(path).load()
        ref = torch.load(path)
        self.assertEqual(sorted(ck), ["best_val_loss", "config", "iter_num", "model", "model_args", "optimizer"])
        self.assertEqual(ck["config"], ref["config"])
        self.assertEqual(ck["model_args"], ref["model_args"])
        self.assertEqual(ck["best_val_loss"], 1.25)
        self.assertIsInstance(ck["best_val_loss"], np.float64)
        for name, t in ref["model"].items():
            np.testing.assert_array_equal(ck["model"][name].array(), t.numpy(), err_msg=name)
        exp_avg = ck["optimizer"]["state"][0]["exp_avg"]
        self.assertIsInstance(exp_avg, LazyTensor)
        np.testing.assert_array_equal(exp_avg.array(), ref["optimizer"]["state"][0]["exp_avg"].numpy())
        # a model tensor is a view of the file's mapping, not a copy
        wte = ck["model"]["transformer.wte.weight"].array()
        self.assertFalse(wte.flags.owndata)
        self.assertFalse(wte.flags.writeable)

    def test_conversion_reads_no_optimizer_state_and_writes_torchs_values(self):
        model, path = self.write(compiled=True, bias=False)
        self.assertEqual(convert.main([path, self.out, "-q"]), 0)
        r = GGUFReader(self.out)
        sd = {k: v.detach().numpy() for k, v in model.state_dict().items()}
        np.testing.assert_array_equal(r.tensors["token_embd.weight"].data, sd["transformer.wte.weight"][:50257])
        np.testing.assert_array_equal(r.tensors["output.weight"].data, sd["lm_head.weight"][:50257])
        for i in range(2):
            np.testing.assert_array_equal(r.tensors[f"blk.{i}.attn_qkv.weight"].data,
                                          sd[f"transformer.h.{i}.attn.c_attn.weight"])
            np.testing.assert_array_equal(r.tensors[f"blk.{i}.ffn_down.weight"].data,
                                          sd[f"transformer.h.{i}.mlp.c_proj.weight"])
            for b in ("attn_qkv", "attn_output", "ffn_up", "ffn_down", "attn_norm", "ffn_norm"):
                self.assertFalse(r.tensors[f"blk.{i}.{b}.bias"].data.any(), "bias=False: zero biases")
        self.assertEqual(r.value("tokenizer.ggml.model"), "gpt2")
        self.assertEqual(len(r.value("tokenizer.ggml.tokens")), 50257)
        self.assertEqual(r.value("general.name"), os.path.basename(self.tmp.name))
        # the optimizer's storages (twice the model) were never mapped
        archive = TorchArchive(path)
        ck = archive.load()
        self.assertTrue(all(t.storage._array is None for s in ck["optimizer"]["state"].values()
                            for t in s.values() if isinstance(t, LazyTensor)))

    def test_refused_checkpoints(self):
        _, path = self.write()
        with zipfile.ZipFile(path) as z:
            members = {n: z.read(n) for n in z.namelist()}
        pkl = next(n for n in members if n.endswith("data.pkl"))
        # a global nanoGPT never saves, slipped in where train.py keeps its config
        bad = members[pkl].replace(b"ccollections\nOrderedDict\n", b"cos\nsystem\n", 1)
        self.assertNotEqual(bad, members[pkl])
        evil = self.p("evil.pt")
        with zipfile.ZipFile(evil, "w") as z:
            for n, d in members.items():
                z.writestr(n, bad if n == pkl else d)
        self.assert_refused(r"refusing to load global 'os\.system'", evil)
        # a state dict alone (no model_args) outside a Hugging Face folder
        sd_only = self.p("weights.pt")
        torch.save(torch.load(path)["model"], sd_only)
        self.assert_refused(r"neither a nanoGPT ckpt\.pt nor an llm\.c \.bin, and its folder has no config\.json",
                            sd_only)
        # a modified model.py (RMSNorm's 'gain')
        ck = torch.load(path)
        ck["model"]["transformer.h.0.ln_1.gain"] = ck["model"].pop("transformer.h.0.ln_1.weight")
        torch.save(ck, self.p("rms.pt"))
        self.assert_refused(r"unexpected tensor 'transformer\.h\.0\.ln_1\.gain'", self.p("rms.pt"))
        ck = torch.load(path)
        ck["model_args"]["n_embd"] = 24
        torch.save(ck, self.p("args.pt"))
        self.assert_refused(r"has shape \(50304, 16\), expected \(50304, 24\) from model_args", self.p("args.pt"))

    def test_small_vocabulary_without_meta_is_refused_and_meta_is_found(self):
        chars = cw.write_meta(self.p(os.path.join("data", "shakespeare_char", "meta.pkl")), TEXT)
        args = dict(SMALL, vocab_size=len(chars), bias=False)
        model = cw.make_nanogpt(args, seed=1)
        os.makedirs(self.p("out"))
        ck = self.p(os.path.join("out", "ckpt.pt"))
        cw.save_nanogpt(ck, model, args, dataset="shakespeare_char")
        p = convert_py(ck, self.p("ok.gguf"))
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn(f"characters from {self.p(os.path.join('data', 'shakespeare_char', 'meta.pkl'))}", p.stderr)
        shutil.rmtree(self.p("data"))
        self.assert_refused(r"a character-level model needs its meta\.pkl: --meta PATH \(no meta\.pkl at", ck)


class LlmCCheckpoint(Tmp):
    def setUp(self):
        require("torch")  # llm.c's write_model writes through torch
        super().setUp()
        self.args = dict(SMALL, vocab_size=50257)
        self.model = cw.make_nanogpt(self.args, seed=9)

    def test_fp32_and_bf16_values(self):
        for dtype, tdtype in (("float32", torch.float32), ("bfloat16", torch.bfloat16)):
            src = self.p(f"m_{dtype}.bin")
            cw.save_llmc(src, self.model, self.args, dtype)
            self.assertEqual(convert.main([src, self.out, "-q"]), 0)
            r = GGUFReader(self.out)
            for name, p in self.model.named_parameters():
                want = p.detach().to(tdtype).float().numpy()  # llm.c's bf16 is torch's rounding
                gg = {"transformer.wte.weight": "token_embd.weight", "transformer.wpe.weight": "position_embd.weight",
                      "transformer.ln_f.weight": "output_norm.weight", "transformer.ln_f.bias": "output_norm.bias"}
                if name in gg:
                    np.testing.assert_array_equal(r.tensors[gg[name]].data, want, err_msg=f"{dtype} {name}")
            np.testing.assert_array_equal(r.tensors["blk.1.attn_qkv.weight"].data,
                                          self.model.transformer.h[1].attn.c_attn.weight.detach().to(tdtype).float().numpy())
            self.assertEqual(r.tensors["token_embd.weight"].ne, [16, 50257])

    def test_outtypes_and_progress_bar(self):
        src = self.p("m.bin")
        cw.save_llmc(src, self.model, self.args, "bfloat16")
        for outtype, down, qkv in (("f16", 1, 1), ("q8_0", 8, 1)):  # qkv rows of 16: f16 in a q8_0 file
            self.assertEqual(convert.main([src, self.out, "-q", "--outtype", outtype]), 0)
            r = GGUFReader(self.out)
            self.assertEqual(r.tensors["blk.0.ffn_down.weight"].ggml_type, down)
            self.assertEqual(r.tensors["blk.0.attn_qkv.weight"].ggml_type, qkv)
            self.assertEqual(r.tensors["blk.0.attn_qkv.bias"].ggml_type, 0)
            self.assertEqual(r.tensors["position_embd.weight"].ggml_type, 0)
        # the bar a terminal gets (drawn in place with \r, closed with the time taken)
        err, threshold = io.StringIO(), convert.BAR_MIN_BYTES
        convert.BAR_MIN_BYTES = 0
        try:
            with contextlib.redirect_stderr(err):
                convert.convert(src, self.out, bar=True)
        finally:
            convert.BAR_MIN_BYTES = threshold
        lines = err.getvalue().split("\r")
        self.assertGreater(len(lines), 29)  # one redraw per tensor
        self.assertRegex(lines[-1], r"^convert: \[#{30}\] 100% \d+/\d+ MiB +[0-9.]+ s +\n")

    def test_bad_files(self):
        good = self.p("good.bin")
        cw.save_llmc(good, self.model, self.args)
        with open(good, "rb") as f:
            data = f.read()
        cases = [
            ("short.bin", data[:600], r"file is 600 bytes, too short for llm\.c's 1024-byte header"),
            ("truncated.bin", data[:-4], r"describes \d+ parameters = \d+ bytes with the header, but the file has"),
            ("extra.bin", data + b"\0" * 8, r"but the file has \d+ bytes"),
            ("v2.bin", data[:4] + struct.pack("<i", 2) + data[8:], r"version 2 is not supported .*re-export"),
            ("heads.bin", data[:20] + struct.pack("<i", 3) + data[24:], r"C=16 is not divisible by NH=3"),
            ("vp.bin", data[:28] + struct.pack("<i", 100) + data[32:], r"padded vocab size 100 is smaller than"),
        ]
        for name, blob, pattern in cases:
            with self.subTest(name):
                with open(self.p(name), "wb") as f:
                    f.write(blob)
                self.assert_refused(pattern, self.p(name))


class CharacterVocabulary(Tmp):
    def test_meta_pkl_checks(self):
        for meta, pattern in (({"stoi": {"ab": 0}, "itos": {0: "ab"}}, r"token 'ab' is not a single character"),
                              ({"stoi": {"a": 1}, "itos": {1: "a"}}, r"stoi\['a'\] = 1 is not an id in 0\.\.0"),
                              ({"stoi": {"a": 0, "b": 1}, "itos": {0: "b", 1: "a"}}, r"stoi and itos disagree"),
                              ([1, 2], r"expected a dict with 'stoi' and 'itos'")):
            path = self.p("meta.pkl")
            with open(path, "wb") as f:
                pickle.dump(meta, f)
            with self.assertRaisesRegex(char_vocab.VocabError, pattern):
                char_vocab.load_meta(path)
        with open(self.p("meta.pkl"), "wb") as f:
            f.write(b"\x80\x02cos\nsystem\nX\x02\x00\x00\x00ls\x85R.")
        with self.assertRaisesRegex(char_vocab.VocabError, r"refusing to load global 'os\.system'"):
            char_vocab.load_meta(self.p("meta.pkl"))

    def test_the_sentencepiece_library_encodes_like_stoi(self):
        require("sentencepiece")
        chars = cw.write_meta(self.p("meta.pkl"), TEXT)
        proto = char_vocab.sentencepiece_proto(char_vocab.load_meta(self.p("meta.pkl")))
        sp = sentencepiece.SentencePieceProcessor()
        sp.LoadFromSerializedProto(proto)
        stoi = {c: i for i, c in enumerate(chars)}
        self.assertEqual(sp.get_piece_size(), len(chars))
        text = "All:\n  Speak,  hear me!\n\nFirst? 3$"
        self.assertEqual(sp.encode(text), [stoi[c] for c in text])
        self.assertEqual(sp.decode(sp.encode(text)), text)
        unk = char_vocab.unknown_id(chars)
        self.assertEqual(chars[unk], "!")  # the first punctuation character of the vocabulary
        self.assertEqual(sp.encode("é"), [unk])
        self.assertEqual([sp.id_to_piece(i) for i in range(len(chars))], [char_vocab.token_text(c) for c in chars])


class HuggingFaceArchitectures(Tmp):
    def test_non_gpt2_architectures_are_named(self):
        hf = self.p("hf")
        os.makedirs(hf)
        for arch, model_type in (("LlamaForCausalLM", "llama"), ("GPTNeoXForCausalLM", "gpt_neox"),
                                 ("GPT2ForSequenceClassification", "gpt2"), ("GPTJForCausalLM", "gptj")):
            with open(os.path.join(hf, "config.json"), "w") as f:
                json.dump({"architectures": [arch], "model_type": model_type, "n_layer": 1}, f)
            self.assert_refused(rf"architectures \['{arch}'\]", hf)
            self.assert_refused(rf"architectures \['{arch}'\]", os.path.join(hf, "config.json"))

    def test_unknown_files(self):
        for name, data, pattern in (("x.gguf", b"GGUF\x03\0\0\0", r"already a GGUF file"),
                                    ("x.txt", b"hello world, not a model", r"not a checkpoint convert\.py reads"),
                                    ("empty.bin", b"", r"not a checkpoint convert\.py reads")):
            with open(self.p(name), "wb") as f:
                f.write(data)
            self.assert_refused(pattern, self.p(name))
        self.assert_refused(r"no such file or folder", self.p("missing.pt"))


if __name__ == "__main__":
    unittest.main()
