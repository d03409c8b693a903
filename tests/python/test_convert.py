"""scripts/convert.py (+ hf_checkpoint.py, hf_tokenizer.py, make_random_model.py).

The expected tensors come from torch.load of pytorch_model.bin (torch's own
reader, not ours) and from the tokenizer files / the sentencepiece library.
Malicious pickles and malformed safetensors must be refused with one line on
stderr, exit status 1 and no output file.
"""
import contextlib
import io
import json
import os
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
import convert  # noqa: E402
import make_random_model  # noqa: E402
from gguf import GGMLType, GGUFReader  # noqa: E402

try:
    import torch
except ImportError:  # the bin-vs-torch checks need it; everything else runs without
    torch = None
try:
    import sentencepiece
except ImportError:
    sentencepiece = None


def run_script(script, *args):
    return subprocess.run([sys.executable, os.path.join(SCRIPTS, script), *map(str, args)],
                          capture_output=True, text=True, timeout=120)


def make_model(out_dir, *extra):
    """In-process (torch is imported once per test run, not per model)."""
    with contextlib.redirect_stderr(io.StringIO()) as err:
        if make_random_model.main([out_dir, "--preset", "tiny", *map(str, extra)]):
            raise RuntimeError(err.getvalue())


class Converted(unittest.TestCase):
    """One tiny model, converted from each source to each type."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.hf = os.path.join(cls.tmp.name, "tiny")
        make_model(cls.hf, "--format", "both" if torch else "safetensors", "--seed", "7")
        cls.files = {}
        for key, args in {"st": ["--source", "safetensors"], "bin": ["--source", "bin"],
                          "f16": ["--outtype", "f16"], "q8_0": ["--outtype", "q8_0"]}.items():
            if key == "bin" and torch is None:
                continue
            out = os.path.join(cls.tmp.name, key + ".gguf")
            if convert.main([cls.hf, out, "-q", *args]):
                raise RuntimeError(f"convert.py {args} failed")
            cls.files[key] = out
        cls.f32 = GGUFReader(cls.files["st"])
        with open(os.path.join(cls.hf, "config.json")) as f:
            cls.config = json.load(f)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def expected_names(self):
        names = ["token_embd.weight", "position_embd.weight"]
        for i in range(self.config["n_layer"]):
            for t in ("attn_norm", "attn_qkv", "attn_output", "ffn_norm", "ffn_up", "ffn_down"):
                names += [f"blk.{i}.{t}.weight", f"blk.{i}.{t}.bias"]
        return names + ["output_norm.weight", "output_norm.bias", "output.weight"]

    def test_safetensors_and_bin_give_byte_identical_files(self):
        require("torch")
        with open(self.files["st"], "rb") as a, open(self.files["bin"], "rb") as b:
            self.assertTrue(a.read() == b.read(), "GGUF from safetensors differs from GGUF from pytorch_model.bin")

    def test_metadata(self):
        c, v = self.config, self.f32.value
        self.assertEqual(list(self.f32.fields)[0], "general.architecture")
        self.assertEqual(v("general.architecture"), "gpt2")
        self.assertEqual(v("general.name"), "tiny")
        self.assertEqual(v("general.file_type"), 0)
        self.assertEqual(GGUFReader(self.files["f16"]).value("general.file_type"), 1)
        self.assertEqual(GGUFReader(self.files["q8_0"]).value("general.file_type"), 7)
        self.assertEqual(v("gpt2.context_length"), c["n_positions"])
        self.assertEqual(v("gpt2.embedding_length"), c["n_embd"])
        self.assertEqual(v("gpt2.feed_forward_length"), 4 * c["n_embd"])
        self.assertEqual(v("gpt2.block_count"), c["n_layer"])
        self.assertEqual(v("gpt2.attention.head_count"), c["n_head"])
        self.assertAlmostEqual(v("gpt2.attention.layer_norm_epsilon"), c["layer_norm_epsilon"], delta=1e-12)

    def test_tensor_layout_and_values_match_torch_load(self):
        require("torch")
        sd = torch.load(os.path.join(self.hf, "pytorch_model.bin"))
        t = self.f32.tensors
        self.assertEqual(list(t), self.expected_names())
        E, V, N = self.config["n_embd"], self.config["vocab_size"], self.config["n_positions"]
        self.assertEqual(t["token_embd.weight"].ne, [E, V])
        self.assertEqual(t["position_embd.weight"].ne, [E, N])
        self.assertEqual(t["blk.0.attn_qkv.weight"].ne, [E, 3 * E])
        self.assertEqual(t["blk.1.ffn_up.weight"].ne, [E, 4 * E])
        self.assertEqual(t["blk.1.ffn_down.weight"].ne, [4 * E, E])
        self.assertEqual(t["output.weight"].ne, [E, V])
        hf = {"attn_norm": "ln_1", "attn_qkv": "attn.c_attn", "attn_output": "attn.c_proj",
              "ffn_norm": "ln_2", "ffn_up": "mlp.c_fc", "ffn_down": "mlp.c_proj"}
        expect = {"token_embd.weight": sd["transformer.wte.weight"], "position_embd.weight": sd["transformer.wpe.weight"],
                  "output_norm.weight": sd["transformer.ln_f.weight"], "output_norm.bias": sd["transformer.ln_f.bias"],
                  "output.weight": sd["lm_head.weight"]}
        for i in range(self.config["n_layer"]):
            for g, h in hf.items():
                w = sd[f"transformer.h.{i}.{h}.weight"]
                expect[f"blk.{i}.{g}.weight"] = w.t() if w.dim() == 2 else w  # Conv1D (in,out) -> (out,in)
                expect[f"blk.{i}.{g}.bias"] = sd[f"transformer.h.{i}.{h}.bias"]
        for name, tensor in t.items():
            self.assertEqual(tensor.ggml_type, GGMLType.F32, name)
            np.testing.assert_array_equal(tensor.data, expect[name].numpy(), err_msg=name)

    def test_f16_types_and_rounding(self):
        r = GGUFReader(self.files["f16"])
        max_rel = 0.0
        for name, t in r.tensors.items():
            ref = self.f32.tensors[name].data
            keep_f32 = len(t.ne) == 1 or name == "position_embd.weight"
            self.assertEqual(t.ggml_type, GGMLType.F32 if keep_f32 else GGMLType.F16, name)
            # exactly numpy's round-to-nearest-even f32 -> f16
            np.testing.assert_array_equal(t.data, ref.astype(np.float16) if not keep_f32 else ref, err_msg=name)
            big = np.abs(ref) > 2.0 ** -14  # normal f16 range: relative error <= 2^-11
            max_rel = max(max_rel, float((np.abs(t.to_float32() - ref)[big] / np.abs(ref[big])).max()))
        print(f"\n  f16 GGUF max relative error {max_rel:.3g} (bound 2^-11 = {2.0 ** -11:.3g})")
        self.assertLessEqual(max_rel, 2.0 ** -11)

    def test_q8_0_types_and_error(self):
        r = GGUFReader(self.files["q8_0"])
        worst = 0.0
        for name, t in r.tensors.items():
            keep_f32 = len(t.ne) == 1 or name == "position_embd.weight"
            self.assertEqual(t.ggml_type, GGMLType.F32 if keep_f32 else GGMLType.Q8_0, name)
            if t.ggml_type == GGMLType.Q8_0:
                ref = self.f32.tensors[name].data.reshape(-1, 32)
                d = np.abs(ref).max(axis=1, keepdims=True) / 127
                worst = max(worst, float((np.abs(t.to_float32().reshape(-1, 32) - ref) / d).max()))
        print(f"\n  q8_0 max error {worst:.3f} quantization steps (bound 0.5 + f16 scale rounding)")
        self.assertLess(worst, 0.5 + 127 * 2.0 ** -11)

    def test_gpt2_tokenizer_metadata(self):
        with open(os.path.join(self.hf, "vocab.json"), encoding="utf-8") as f:
            vocab = json.load(f)
        with open(os.path.join(self.hf, "merges.txt"), encoding="utf-8") as f:
            merges = [m for m in f.read().split("\n")[1:] if m]
        v = self.f32.value
        self.assertEqual(v("tokenizer.ggml.model"), "gpt2")
        self.assertEqual(v("tokenizer.ggml.pre"), "gpt-2")
        self.assertEqual(v("tokenizer.ggml.tokens"), sorted(vocab, key=vocab.get))
        self.assertEqual(v("tokenizer.ggml.merges"), merges)
        eot = vocab["<|endoftext|>"]
        types = v("tokenizer.ggml.token_type")
        self.assertEqual(types[eot], 3)
        self.assertEqual(set(np.delete(types, eot).tolist()), {1})
        self.assertEqual((v("tokenizer.ggml.bos_token_id"), v("tokenizer.ggml.eos_token_id")), (eot, eot))
        self.assertIs(v("tokenizer.ggml.add_bos_token"), False)

    def test_synthetic_vocabulary_is_a_consistent_bpe(self):
        tokens = self.f32.value("tokenizer.ggml.tokens")
        self.assertEqual(len(tokens), 1024)
        self.assertEqual(len(set(tokens)), len(tokens))
        known = set(tokens[:256])
        for m in self.f32.value("tokenizer.ggml.merges"):
            a, b = m.split(" ")
            self.assertIn(a, known)
            self.assertIn(b, known)
            known.add(a + b)
        self.assertEqual(known | {"<|endoftext|>"}, set(tokens))


class Variants(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()

    def tearDown(self):
        self.tmp.cleanup()

    def convert(self, hf, *args):
        out = os.path.join(self.tmp.name, f"out{len(os.listdir(self.tmp.name))}.gguf")
        self.assertEqual(convert.main([hf, out, "-q", *args]), 0)
        return GGUFReader(out)

    def test_untied_bf16_checkpoint(self):
        require("torch")
        hf = os.path.join(self.tmp.name, "m")
        make_model(hf, "--format", "both", "--untied", "--dtype", "bfloat16")
        a, b = self.convert(hf, "--source", "safetensors"), self.convert(hf, "--source", "bin")
        sd = torch.load(os.path.join(hf, "pytorch_model.bin"))
        self.assertEqual(sd["lm_head.weight"].dtype, torch.bfloat16)
        for name in a.tensors:
            np.testing.assert_array_equal(a.tensors[name].data, b.tensors[name].data, err_msg=name)
        np.testing.assert_array_equal(a.tensors["output.weight"].data, sd["lm_head.weight"].float().numpy())
        self.assertFalse(np.array_equal(a.tensors["output.weight"].data, a.tensors["token_embd.weight"].data))

    def test_missing_vocabulary_entries_become_unused_pad_tokens(self):
        hf = os.path.join(self.tmp.name, "m")
        make_model(hf)
        with open(os.path.join(hf, "vocab.json"), encoding="utf-8") as f:
            vocab = json.load(f)
        dropped = [t for t, i in vocab.items() if i in (1000, 1001)]
        for t in dropped:
            del vocab[t]
        with open(os.path.join(hf, "vocab.json"), "w", encoding="utf-8") as f:
            json.dump(vocab, f)
        r = self.convert(hf)
        self.assertEqual(r.value("tokenizer.ggml.tokens")[1000:1002], ["[PAD1000]", "[PAD1001]"])
        self.assertEqual(list(r.value("tokenizer.ggml.token_type")[1000:1002]), [5, 5])

    def test_sharded_safetensors_and_tokenizer_json_give_the_same_file(self):
        from hf_checkpoint import read_safetensors, write_safetensors
        hf = os.path.join(self.tmp.name, "m")
        make_model(hf)
        ref = os.path.join(self.tmp.name, "ref.gguf")
        self.assertEqual(convert.main([hf, ref, "-q", "--name", "m"]), 0)
        state = read_safetensors(os.path.join(hf, "model.safetensors"))
        names = list(state)
        weight_map = {}
        for i, part in enumerate((names[:len(names) // 2], names[len(names) // 2:])):
            shard = f"model-0000{i + 1}-of-00002.safetensors"
            write_safetensors(os.path.join(hf, shard), {k: np.array(state[k]) for k in part})
            weight_map.update({k: shard for k in part})
        os.remove(os.path.join(hf, "model.safetensors"))
        with open(os.path.join(hf, "model.safetensors.index.json"), "w") as f:
            json.dump({"metadata": {}, "weight_map": weight_map}, f)
        # the fast-tokenizer form of the same vocabulary
        with open(os.path.join(hf, "vocab.json"), encoding="utf-8") as f:
            vocab = json.load(f)
        with open(os.path.join(hf, "merges.txt"), encoding="utf-8") as f:
            merges = [m for m in f.read().split("\n")[1:] if m]
        eot = vocab.pop("<|endoftext|>")
        with open(os.path.join(hf, "tokenizer.json"), "w", encoding="utf-8") as f:
            json.dump({"model": {"type": "BPE", "vocab": vocab, "merges": [m.split(" ") for m in merges]},
                       "added_tokens": [{"id": eot, "content": "<|endoftext|>", "special": True}]}, f)
        os.remove(os.path.join(hf, "vocab.json"))
        os.remove(os.path.join(hf, "merges.txt"))
        out = os.path.join(self.tmp.name, "sharded.gguf")
        self.assertEqual(convert.main([hf, out, "-q", "--name", "m"]), 0)
        with open(ref, "rb") as a, open(out, "rb") as b:
            self.assertTrue(a.read() == b.read(), "sharded/tokenizer.json conversion differs")

    def test_sentencepiece_tokenizer_matches_the_library(self):
        require("sentencepiece")
        corpus = os.path.join(self.tmp.name, "corpus.txt")
        with open(corpus, "w") as f:
            f.write(make_random_model.CORPUS * 3)
        for dummy_prefix in (True, False):
            prefix = os.path.join(self.tmp.name, f"sp{int(dummy_prefix)}")
            sentencepiece.SentencePieceTrainer.train(
                input=corpus, model_prefix=prefix, vocab_size=400, model_type="bpe", byte_fallback=True,
                pad_id=3, add_dummy_prefix=dummy_prefix, minloglevel=2)
            hf = prefix + "_hf"
            make_model(hf, "--tokenizer-model", prefix + ".model")
            r = self.convert(hf)
            sp = sentencepiece.SentencePieceProcessor(model_file=prefix + ".model")
            n = sp.get_piece_size()
            self.assertEqual(r.tensors["token_embd.weight"].ne[1], n)
            self.assertEqual(r.value("tokenizer.ggml.model"), "llama")
            self.assertEqual(r.value("tokenizer.ggml.tokens"), [sp.id_to_piece(i) for i in range(n)])
            np.testing.assert_array_equal(r.value("tokenizer.ggml.scores"),
                                          np.array([sp.get_score(i) for i in range(n)], dtype=np.float32))
            expect_types = [2 if sp.is_unknown(i) else 3 if sp.is_control(i) else 6 if sp.is_byte(i)
                            else 5 if sp.is_unused(i) else 1 for i in range(n)]
            self.assertEqual(list(r.value("tokenizer.ggml.token_type")), expect_types)
            self.assertEqual(expect_types.count(6), 256)
            for key, want in (("bos", sp.bos_id()), ("eos", sp.eos_id()), ("unknown", sp.unk_id()),
                              ("padding", sp.pad_id())):
                self.assertEqual(r.value(f"tokenizer.ggml.{key}_token_id"), want, key)
            self.assertIs(r.value("tokenizer.ggml.add_bos_token"), True)
            self.assertIs(r.value("tokenizer.ggml.add_eos_token"), False)
            self.assertIs(r.value("tokenizer.ggml.add_space_prefix"), dummy_prefix)
            with open(prefix + ".model", "rb") as f:
                self.assertEqual(r.value("tokenizer.sentencepiece.model_proto").tobytes(), f.read())
            self.assertEqual(r.fields["tokenizer.sentencepiece.model_proto"].elem_type, 0)  # UINT8


def pickle_calling(module, name, arg):
    """Protocol-2 pickle: GLOBAL module.name, called with one string argument."""
    a = arg.encode()
    return (b"\x80\x02c" + f"{module}\n{name}\n".encode() + b"X" + struct.pack("<I", len(a)) + a
            + b"\x85R.")  # TUPLE1, REDUCE, STOP


class RefusesBadInput(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.base_tmp = tempfile.TemporaryDirectory()
        cls.base = os.path.join(cls.base_tmp.name, "tiny")
        make_model(cls.base)

    @classmethod
    def tearDownClass(cls):
        cls.base_tmp.cleanup()

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.hf = os.path.join(self.tmp.name, "hf")
        shutil.copytree(self.base, self.hf)
        self.out = os.path.join(self.tmp.name, "out.gguf")

    def tearDown(self):
        self.tmp.cleanup()

    def assert_refused(self, pattern, *args):
        p = run_script("convert.py", self.hf, self.out, *args)
        print(f"\n  refused: {p.stderr.strip()}")
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertNotIn("Traceback", p.stderr)
        error_lines = [ln for ln in p.stderr.splitlines() if "error" in ln]
        self.assertEqual(error_lines, p.stderr.strip().splitlines()[-1:], "expected one closing error line")
        self.assertRegex(error_lines[0], pattern)
        self.assertFalse(os.path.exists(self.out), "output file left behind")
        self.assertFalse(os.path.exists(self.out + ".tmp"), "temporary file left behind")

    def write_bin(self, pkl):
        if os.path.exists(os.path.join(self.hf, "model.safetensors")):
            os.remove(os.path.join(self.hf, "model.safetensors"))
        with zipfile.ZipFile(os.path.join(self.hf, "pytorch_model.bin"), "w") as z:
            z.writestr("archive/data.pkl", pkl)
            z.writestr("archive/version", "3\n")

    def test_malicious_pickles_are_refused_and_not_run(self):
        marker = os.path.join(self.tmp.name, "pwned")
        for module, name, arg in (("os", "system", f"touch {marker}"), ("posix", "system", f"touch {marker}"),
                                  ("builtins", "eval", f"open({marker!r}, 'w')"),
                                  ("builtins", "exec", f"open({marker!r}, 'w')"),
                                  ("subprocess", "getoutput", f"touch {marker}")):
            self.write_bin(pickle_calling(module, name, arg))
            self.assert_refused(rf"pytorch_model\.bin: refusing to load global '{module}\.{name}'")
            self.assertFalse(os.path.exists(marker), f"{module}.{name} was executed")
        # hidden inside an otherwise ordinary state dict
        inner = pickle_calling("os", "system", f"touch {marker}")[2:-1]
        self.write_bin(b"\x80\x02ccollections\nOrderedDict\n)R(X\x01\x00\x00\x00a" + inner + b"u.")
        self.assert_refused(r"refusing to load global 'os\.system'")
        self.assertFalse(os.path.exists(marker))

    def test_bad_pytorch_archives(self):
        self.write_bin(b"\x80\x02}q\x00.")  # empty dict: tensors missing
        self.assert_refused(r"missing tensors")
        with open(os.path.join(self.hf, "pytorch_model.bin"), "wb") as f:
            f.write(b"\x80\x02not a zip")
        self.assert_refused(r"not a zip archive")
        self.write_bin(b"\x80\x02ccollections\nOrderedDict\n)R(X\x01")  # truncated pickle
        self.assert_refused(r"cannot unpickle")

    def write_safetensors(self, header, data=b"", raw_len=None):
        raw = json.dumps(header).encode() if isinstance(header, dict) else header
        with open(os.path.join(self.hf, "model.safetensors"), "wb") as f:
            f.write(struct.pack("<Q", len(raw) if raw_len is None else raw_len) + raw + data)

    def test_malformed_safetensors_are_refused(self):
        f32 = {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]}
        cases = [
            ({"a": f32}, b"\0" * 16, 10 ** 6, r"header length 1000000 runs past the end"),
            ({"a": f32}, b"\0" * 16, 2 ** 40, r"exceeds the .*-byte limit"),
            (b"{not json", b"", None, r"not valid UTF-8 JSON"),
            ({"a": dict(f32, data_offsets=[0, 10 ** 9])}, b"\0" * 16, None, r"run past the end of the 16-byte"),
            ({"a": f32, "b": dict(f32, data_offsets=[8, 24])}, b"\0" * 24, None, r"overlap"),
            ({"a": dict(f32, dtype="F99")}, b"\0" * 16, None, r"unknown dtype 'F99'"),
            ({"a": dict(f32, shape=[2, 3])}, b"\0" * 16, None, r"needs 24 bytes but data_offsets \[0, 16\] span 16"),
            ({"a": dict(f32, data_offsets=[-4, 12])}, b"\0" * 16, None, r"data_offsets must be"),
            ({"a": dict(f32, shape=[2, -2])}, b"\0" * 16, None, r"shape must be"),
            ({"a": f32}, b"\0" * 20, None, r"4 bytes that no tensor uses"),
        ]
        for header, data, raw_len, pattern in cases:
            with self.subTest(pattern=pattern):
                self.write_safetensors(header, data, raw_len)
                self.assert_refused(r"model\.safetensors.*" + pattern)
        with open(os.path.join(self.hf, "model.safetensors"), "wb") as f:
            f.write(b"\x01\x02")
        self.assert_refused(r"too short")

    def test_checkpoint_not_matching_config(self):
        with open(os.path.join(self.hf, "config.json")) as f:
            cfg = json.load(f)
        cfg["n_embd"] = 32
        with open(os.path.join(self.hf, "config.json"), "w") as f:
            json.dump(cfg, f)
        self.assert_refused(r"has shape \(1024, 64\), expected \(1024, 32\)")

    def test_missing_files_and_unsupported_configs(self):
        os.makedirs(self.out)
        p = run_script("convert.py", self.hf, self.out)
        self.assertEqual(p.returncode, 1)
        self.assertIn("is a directory", p.stderr)
        os.rmdir(self.out)
        with open(os.path.join(self.hf, "config.json")) as f:
            cfg = json.load(f)
        with open(os.path.join(self.hf, "config.json"), "w") as f:
            json.dump(dict(cfg, activation_function="relu"), f)
        self.assert_refused(r"activation_function 'relu' is not supported")
        with open(os.path.join(self.hf, "config.json"), "w") as f:
            json.dump(dict(cfg, scale_attn_by_inverse_layer_idx=True), f)
        self.assert_refused(r"scale_attn_by_inverse_layer_idx")
        with open(os.path.join(self.hf, "config.json"), "w") as f:
            json.dump(cfg, f)
        os.remove(os.path.join(self.hf, "merges.txt"))
        self.assert_refused(r"no tokenizer found")
        shutil.copy(os.path.join(self.base, "merges.txt"), self.hf)
        os.remove(os.path.join(self.hf, "model.safetensors"))
        self.assert_refused(r"no model\.safetensors or pytorch_model\.bin")
        os.remove(os.path.join(self.hf, "config.json"))
        self.assert_refused(r"no config\.json")


if __name__ == "__main__":
    unittest.main()
