"""scripts/gguf.py: writer/reader round trip, byte layout against the spec, failures."""
import json
import os
import struct
import subprocess
import sys
import tempfile
import unittest

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
from fixtures import TempDirTest  # noqa: E402
from helpers import require  # noqa: E402  (missing engines: skip with how to install, fail in CI)
import gguf  # noqa: E402
from gguf import GGMLType, GGUFError, GGUFReader, GGUFWriter, ValueType  # noqa: E402


def gguf_string(s):
    b = s.encode("utf-8")
    return struct.pack("<Q", len(b)) + b


class GGUFFileTest(TempDirTest):
    """self.path: t.gguf in a fresh temporary folder."""

    def setUp(self):
        super().setUp()
        self.path = os.path.join(self.dir, "t.gguf")


class RoundTrip(GGUFFileTest):

    def test_every_value_type_round_trips(self):
        scalars = [
            ("u8", ValueType.UINT8, 255), ("i8", ValueType.INT8, -128), ("u16", ValueType.UINT16, 65535),
            ("i16", ValueType.INT16, -32768), ("u32", ValueType.UINT32, 2**32 - 1), ("i32", ValueType.INT32, -2**31),
            ("u64", ValueType.UINT64, 2**64 - 1), ("i64", ValueType.INT64, -2**63),
            ("f32", ValueType.FLOAT32, 0.25), ("f64", ValueType.FLOAT64, 1 / 3),
            ("b1", ValueType.BOOL, True), ("b0", ValueType.BOOL, False),
            ("s", ValueType.STRING, "héllo ✓ \U0001F600"), ("empty", ValueType.STRING, ""),
        ]
        arrays = [
            ("a.u8", ValueType.UINT8, [0, 1, 255]), ("a.i8", ValueType.INT8, [-128, 127]),
            ("a.u16", ValueType.UINT16, [1, 65535]), ("a.i16", ValueType.INT16, [-5, 5]),
            ("a.u32", ValueType.UINT32, [7, 2**32 - 1]), ("a.i32", ValueType.INT32, [-1, 3, 6]),
            ("a.u64", ValueType.UINT64, [2**64 - 1]), ("a.i64", ValueType.INT64, [-2**63, 0]),
            ("a.f32", ValueType.FLOAT32, [1.5, -2.25]), ("a.f64", ValueType.FLOAT64, [np.pi]),
            ("a.bool", ValueType.BOOL, [True, False, True]), ("a.s", ValueType.STRING, ["a", "", "Ġthe", "日本"]),
            ("a.empty", ValueType.INT32, []),
        ]
        w = GGUFWriter(self.path)
        for k, t, v in scalars:
            w.add(k, t, v)
        for k, t, v in arrays:
            w.add_array(k, t, v)
        w.write()
        r = GGUFReader(self.path)
        self.assertEqual(list(r.fields), [k for k, _, _ in scalars] + [k for k, _, _ in arrays])
        for k, t, v in scalars:
            self.assertEqual(r.fields[k].type, t, k)
            self.assertEqual(r.fields[k].value, v, k)
        for k, t, v in arrays:
            f = r.fields[k]
            self.assertEqual((f.type, f.elem_type), (ValueType.ARRAY, t), k)
            self.assertEqual(list(f.value), v, k)

    def test_tensors_round_trip_with_alignment_and_ggml_order(self):
        rng = np.random.RandomState(0)
        a = rng.standard_normal((3, 5)).astype(np.float32)
        b = rng.standard_normal((2, 3, 4)).astype(np.float16)
        c = rng.standard_normal(7).astype(np.float32)
        q = rng.standard_normal((4, 64)).astype(np.float32)
        for alignment in (32, 64, 8):
            w = GGUFWriter(self.path)
            if alignment != 32:
                w.add_uint32("general.alignment", alignment)
            w.add_tensor("a", a)
            w.add_tensor("b", b)
            w.add_tensor("c.bf16", c, GGMLType.BF16)
            w.add_tensor("q", q, GGMLType.Q8_0)
            w.write()
            r = GGUFReader(self.path)
            self.assertEqual(r.alignment, alignment)
            self.assertEqual(r.data_offset % alignment, 0)
            self.assertEqual(r.tensors["a"].ne, [5, 3])
            self.assertEqual(r.tensors["b"].ne, [4, 3, 2])
            self.assertEqual(r.tensors["q"].ne, [64, 4])
            for t in r.tensors.values():
                self.assertEqual(t.offset % alignment, 0, t.name)
            np.testing.assert_array_equal(r.tensors["a"].data, a)
            np.testing.assert_array_equal(r.tensors["b"].data, b)
            self.assertEqual(r.tensors["b"].ggml_type, GGMLType.F16)
            # bf16 keeps the top 16 bits (rounded): relative error <= 2^-8
            err = np.abs(r.tensors["c.bf16"].to_float32() - c) / np.abs(c)
            if alignment == 32:
                print(f"\n  bf16 max relative error {err.max():.3g} (bound 2^-8)")
            self.assertLessEqual(err.max(), 2.0 ** -8)
            # q8_0: every value within half a quantization step d/2, d = max|block|/127
            deq = r.tensors["q"].to_float32()
            d = np.abs(q.reshape(-1, 32)).max(axis=1) / 127
            step_err = np.abs(deq - q).reshape(-1, 32).max(axis=1) / d
            if alignment == 32:
                print(f"  q8_0 max error {step_err.max():.3f} steps (bound 0.5 + f16 scale rounding)")
            self.assertLess(step_err.max(), 0.5 + 127 * 2.0 ** -11)

    def test_q8_0_matches_ggml_reference_formula(self):
        # ggml quantize_row_q8_0_ref: d = amax/127, id = 1/d, q = roundf(x*id), d stored as fp16.
        x = np.array([[0.0] * 32, list(np.linspace(-1, 1, 32)), [3.0] + [0.5] * 31], dtype=np.float32)
        raw = gguf.quantize_q8_0(x).reshape(-1, 34)
        for row, block in zip(x, raw):
            amax = np.float32(np.abs(row).max())
            d = amax / np.float32(127)
            expect_q = [int(np.sign(v) * np.floor(abs(v / d) + 0.5)) if d else 0 for v in row]
            self.assertEqual(block[:2].tobytes(), np.float16(d).tobytes())
            self.assertEqual(list(block[2:].view(np.int8)), expect_q)

    def test_byte_layout_matches_the_spec(self):
        # Built by hand from ggml's docs/gguf.md, independently of the writer.
        w = GGUFWriter(self.path)
        w.add_string("general.architecture", "gpt2")
        w.add_uint32("n", 7)
        w.add_array("arr", ValueType.STRING, ["ab", "c"])
        w.add_tensor("t", np.array([[1, 2, 3], [4, 5, 6]], dtype=np.float32))
        w.add_tensor("u", np.array([7], dtype=np.float32))
        w.write()
        expect = b"GGUF" + struct.pack("<IQQ", 3, 2, 3)
        expect += gguf_string("general.architecture") + struct.pack("<I", 8) + gguf_string("gpt2")
        expect += gguf_string("n") + struct.pack("<II", 4, 7)
        expect += gguf_string("arr") + struct.pack("<IIQ", 9, 8, 2) + gguf_string("ab") + gguf_string("c")
        expect += gguf_string("t") + struct.pack("<IQQIQ", 2, 3, 2, 0, 0)
        expect += gguf_string("u") + struct.pack("<IQIQ", 1, 1, 0, 32)  # 24 data bytes padded to 32
        expect += b"\0" * ((32 - len(expect) % 32) % 32)
        expect += struct.pack("<6f", 1, 2, 3, 4, 5, 6) + b"\0" * 8 + struct.pack("<f", 7) + b"\0" * 28
        with open(self.path, "rb") as f:
            self.assertEqual(f.read(), expect)


class Failures(GGUFFileTest):

    def test_failed_write_leaves_no_file(self):
        w = GGUFWriter(self.path)
        w.add_tensor("a", np.zeros(4, np.float32))
        w.add_tensor("b", np.zeros(4, np.float32))

        def explode(i, n, name):
            if i == 1:
                raise RuntimeError("disk full (simulated)")
        with self.assertRaises(RuntimeError):
            w.write(progress=explode)
        self.assertEqual(os.listdir(self.tmp.name), [])

    def test_writer_rejects_bad_values(self):
        w = GGUFWriter(self.path)
        with self.assertRaises(GGUFError):
            w.add("x", ValueType.UINT8, 256)
        with self.assertRaises(GGUFError):
            w.add("x", ValueType.INT32, 1.5)
        with self.assertRaises(GGUFError):
            w.add_array("x", ValueType.INT8, [200])
        w.add_uint32("x", 1)
        with self.assertRaises(GGUFError):
            w.add_uint32("x", 2)  # duplicate key
        with self.assertRaises(GGUFError):
            w.add_tensor("q", np.zeros((2, 30), np.float32), GGMLType.Q8_0)  # 30 % 32 != 0
        with self.assertRaises(GGUFError):
            w.add_tensor("5d", np.zeros((1, 1, 1, 1, 1), np.float32))

    def _write_small(self):
        w = GGUFWriter(self.path)
        w.add_string("k", "v")
        w.add_tensor("t", np.arange(8, dtype=np.float32))
        w.write()
        with open(self.path, "rb") as f:
            return bytearray(f.read())

    def _expect_error(self, data, pattern):
        with open(self.path, "wb") as f:
            f.write(data)
        with self.assertRaisesRegex(GGUFError, pattern):
            GGUFReader(self.path)

    def test_reader_rejects_malformed_files(self):
        good = self._write_small()
        self._expect_error(b"GGML" + good[4:], "not a GGUF file")
        self._expect_error(good[:4] + struct.pack("<I", 2) + good[8:], "version 2")
        self._expect_error(good[:-4], "runs past the end")
        self._expect_error(good[:60], "needs .* bytes")
        huge = good[:8] + struct.pack("<Q", 2**40) + good[16:]
        self._expect_error(huge, "cannot fit")
        # The tensor info ends at 24 (header) + 22 (kv "k"="v") + 33 (info of "t");
        # its last 8 bytes are the data offset: make it unaligned.
        off_pos = 24 + 22 + 33 - 8
        self.assertEqual(bytes(good[off_pos:off_pos + 8]), struct.pack("<Q", 0))
        self._expect_error(good[:off_pos] + struct.pack("<Q", 4) + good[off_pos + 8:], "not a multiple")
        self._expect_error(good[:off_pos - 16] + struct.pack("<I", 5) + good[off_pos - 12:], "n_dims=5")
        self._expect_error(good[:off_pos - 4] + struct.pack("<I", 99) + good[off_pos:], "unsupported ggml type 99")

NODE_DIR = os.path.join(ROOT, "scripts", "node")
HF_GGUF = os.path.join(NODE_DIR, "node_modules", "@huggingface", "gguf")
NODE_PARSE = """
import { gguf } from "@huggingface/gguf";
const r = await gguf(process.argv[1], { allowLocalFile: true });
console.log(JSON.stringify({ metadata: r.metadata, offset: r.tensorDataOffset,
  tensors: r.tensorInfos.map(t => [t.name, t.shape, t.dtype, t.offset]) },
  (k, v) => typeof v === "bigint" ? v.toString() : v));
"""


class AgainstHuggingFaceParser(unittest.TestCase):
    """Hugging Face's JavaScript GGUF parser (@huggingface/gguf) reads what we write."""

    def test_metadata_and_tensor_table_agree(self):
        require("gguf-js")
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "x.gguf")
            w = GGUFWriter(path)
            w.add_uint32("general.alignment", 64)
            values = {"u8": (ValueType.UINT8, 200), "i8": (ValueType.INT8, -100), "u16": (ValueType.UINT16, 60000),
                      "i16": (ValueType.INT16, -30000), "u32": (ValueType.UINT32, 4000000000),
                      "i32": (ValueType.INT32, -2000000000), "u64": (ValueType.UINT64, 2**63 + 5),
                      "i64": (ValueType.INT64, -2**62), "f32": (ValueType.FLOAT32, 0.5),
                      "f64": (ValueType.FLOAT64, 0.1), "b": (ValueType.BOOL, True), "s": (ValueType.STRING, "Ġé✓")}
            for k, (t, v) in values.items():
                w.add(k, t, v)
            w.add_array("a.s", ValueType.STRING, ["x", "", "日本"])
            w.add_array("a.i32", ValueType.INT32, [-1, 2, 3])
            w.add_array("a.f32", ValueType.FLOAT32, [0.25, -1.5])
            w.add_array("a.u8", ValueType.UINT8, [1, 2, 255])
            w.add_tensor("w", np.zeros((3, 64), np.float32), GGMLType.Q8_0)
            w.add_tensor("v", np.ones((2, 3, 5), np.float16))
            w.add_tensor("b", np.ones(7, np.float32), GGMLType.BF16)
            w.write()
            p = subprocess.run(["node", "--input-type=module", "-e", NODE_PARSE, path], cwd=NODE_DIR,
                               capture_output=True, text=True, timeout=60)
            self.assertEqual(p.returncode, 0, p.stderr)
            theirs = json.loads(p.stdout)
            ours = GGUFReader(path)
            md = theirs["metadata"]
            self.assertEqual((md["version"], int(md["tensor_count"]), int(md["kv_count"])), (3, 3, len(ours.fields)))
            for k, f in ours.fields.items():
                want = f.value.tolist() if isinstance(f.value, np.ndarray) else f.value
                got = md[k]
                if f.type in (ValueType.UINT64, ValueType.INT64):
                    got = int(got)
                self.assertEqual(got, want, k)
            self.assertEqual(int(theirs["offset"]), ours.data_offset)
            for (name, shape, dtype, offset), t in zip(theirs["tensors"], ours.tensors.values()):
                self.assertEqual((name, [int(d) for d in shape], dtype, int(offset) + ours.data_offset),
                                 (t.name, t.ne, t.ggml_type, t.offset))


if __name__ == "__main__":
    unittest.main()
