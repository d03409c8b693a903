#!/usr/bin/env python3
"""A small GGUF v3 writer and reader in numpy (ggml's docs/gguf.md layout).

File layout (all little-endian):
  magic "GGUF" | uint32 version=3 | uint64 tensor_count | uint64 kv_count
  kv_count x (string key, uint32 value_type, value)
  tensor_count x (string name, uint32 n_dims, n_dims x uint64 ne,
                  uint32 ggml_type, uint64 offset relative to the data section)
  zero padding up to `general.alignment` (default 32)
  data section: every tensor starts at a multiple of the alignment.
A string is a uint64 byte length followed by UTF-8 bytes (no terminator); an
array is uint32 element type, uint64 count, then the elements.

ne[0] is the fastest-varying (innermost) dimension, as ggml stores it: a numpy
array of shape (rows, cols) has ne = [cols, rows].

Used as a module by convert.py and the tests; run as a script it dumps a file:
  gguf.py FILE.gguf [--tensors] [--kv-arrays]
"""
import argparse
import os
import struct
import sys
from collections import OrderedDict

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mapped_io import copy_span, file_span, release_pages, write_all  # noqa: E402

GGUF_MAGIC = b"GGUF"
GGUF_VERSION = 3
DEFAULT_ALIGNMENT = 32
GGML_MAX_DIMS = 4


class GGUFError(Exception):
    """A GGUF file (or a value to write into one) is malformed."""


class ValueType:
    UINT8, INT8, UINT16, INT16, UINT32, INT32, FLOAT32, BOOL, STRING, ARRAY, \
        UINT64, INT64, FLOAT64 = range(13)


VALUE_TYPE_NAMES = {v: k for k, v in vars(ValueType).items() if not k.startswith("_")}

# Fixed-size scalar value types: struct format letter.
_SCALAR_FORMATS = {
    ValueType.UINT8: "B", ValueType.INT8: "b", ValueType.UINT16: "H", ValueType.INT16: "h",
    ValueType.UINT32: "I", ValueType.INT32: "i", ValueType.FLOAT32: "f", ValueType.BOOL: "?",
    ValueType.UINT64: "Q", ValueType.INT64: "q", ValueType.FLOAT64: "d",
}
# numpy dtype used for arrays of each scalar type (bool is stored as one byte).
_SCALAR_NUMPY = {
    ValueType.UINT8: "<u1", ValueType.INT8: "<i1", ValueType.UINT16: "<u2", ValueType.INT16: "<i2",
    ValueType.UINT32: "<u4", ValueType.INT32: "<i4", ValueType.FLOAT32: "<f4", ValueType.BOOL: "<u1",
    ValueType.UINT64: "<u8", ValueType.INT64: "<i8", ValueType.FLOAT64: "<f8",
}
_INT_RANGES = {
    ValueType.UINT8: (0, 2**8 - 1), ValueType.INT8: (-2**7, 2**7 - 1),
    ValueType.UINT16: (0, 2**16 - 1), ValueType.INT16: (-2**15, 2**15 - 1),
    ValueType.UINT32: (0, 2**32 - 1), ValueType.INT32: (-2**31, 2**31 - 1),
    ValueType.UINT64: (0, 2**64 - 1), ValueType.INT64: (-2**63, 2**63 - 1),
}


class GGMLType:
    F32 = 0
    F16 = 1
    Q8_0 = 8
    BF16 = 30


GGML_TYPE_NAMES = {GGMLType.F32: "F32", GGMLType.F16: "F16", GGMLType.Q8_0: "Q8_0", GGMLType.BF16: "BF16"}
# (elements per block, bytes per block)
GGML_BLOCK = {GGMLType.F32: (1, 4), GGMLType.F16: (1, 2), GGMLType.Q8_0: (32, 34), GGMLType.BF16: (1, 2)}
QK8_0 = 32

# llama.cpp's general.file_type values (enum llama_ftype) for the files we write.
FILE_TYPE = {"f32": 0, "f16": 1, "q8_0": 7}


# ---------------------------------------------------------------- conversions
def f32_to_bf16_bits(x):
    """float32 -> bfloat16 bit patterns (uint16), rounding to nearest even as torch does."""
    bits = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)
    rounded = ((bits.astype(np.uint64) + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype(np.uint16)
    nan = np.isnan(np.asarray(x, dtype=np.float32))
    return np.where(nan, np.uint16(0x7FC0), rounded)


def bf16_bits_to_f32(bits):
    """bfloat16 bit patterns (uint16) -> float32, exact."""
    return (np.asarray(bits, dtype=np.uint16).astype(np.uint32) << 16).view(np.float32)


def quantize_q8_0(x):
    """float32 (..., ne0) with ne0 % 32 == 0 -> uint8 blocks (..., ne0/32*34) as ggml's
    quantize_row_q8_0 / gguf-py do: d = max|x|/127 (stored as f16), q = round(x/d)."""
    x = np.asarray(x, dtype=np.float32)
    if x.shape[-1] % QK8_0:
        raise GGUFError(f"Q8_0 needs the inner dimension to be a multiple of {QK8_0}, got {x.shape[-1]}")
    blocks = x.reshape(-1, QK8_0)
    d = np.abs(blocks).max(axis=1, keepdims=True) / np.float32(127)
    with np.errstate(divide="ignore", invalid="ignore"):
        scaled = blocks / d
    # roundf's halves away from zero, exactly (gguf-py's np_roundf): trunc(x + 0.5) would
    # round 0.5 - 2^-25 up, since x + 0.5 rounds to 1.0 in float32.
    mag = np.abs(scaled)
    whole = np.floor(mag)
    q = np.copysign(whole + np.floor(2 * (mag - whole)), scaled)
    q[(d == 0).ravel()] = 0
    out = np.concatenate([d.astype("<f2").view(np.uint8), q.astype(np.int8).view(np.uint8)], axis=1)
    return out.reshape(*x.shape[:-1], x.shape[-1] // QK8_0 * 34)


def dequantize_q8_0(raw, ne):
    """uint8 Q8_0 blocks -> float32 array of numpy shape ne[::-1]."""
    blocks = np.asarray(raw, dtype=np.uint8).reshape(-1, 34)
    d = blocks[:, :2].copy().view("<f2").astype(np.float32)
    q = blocks[:, 2:].copy().view(np.int8).astype(np.float32)
    return (d * q).reshape(tuple(reversed(ne)))


def tensor_nbytes(ne, ggml_type):
    if ggml_type not in GGML_BLOCK:
        raise GGUFError(f"unsupported ggml type {ggml_type}")
    block_elems, block_bytes = GGML_BLOCK[ggml_type]
    if ne[0] % block_elems:
        raise GGUFError(f"ne[0]={ne[0]} is not a multiple of the {GGML_TYPE_NAMES[ggml_type]} block size {block_elems}")
    n = 1
    for d in ne:
        n *= d
    return n // block_elems * block_bytes


def _pad(n, alignment):
    return (alignment - n % alignment) % alignment


# ---------------------------------------------------------------- writer
class GGUFWriter:
    """Collects metadata and tensors, then write() lays the file out in one pass.

    The file is written to PATH.tmp and renamed over PATH only once complete; on
    any error the temporary file is removed, so PATH is never left half-written.
    """

    def __init__(self, path):
        self.path = path
        self.kv = OrderedDict()          # key -> (value_type, value, elem_type)
        self.tensors = OrderedDict()     # name -> (ne, ggml_type, array or function returning it)

    # --- metadata
    def add(self, key, vtype, value):
        """Adds one scalar or string value of an explicit GGUF value type."""
        if vtype == ValueType.ARRAY:
            raise GGUFError(f"{key}: use add_array for arrays")
        self._check_key(key)
        self.kv[key] = (vtype, self._check_scalar(key, vtype, value), None)

    def add_array(self, key, elem_type, values):
        """Adds an array; values may be a list or a numpy array (strings: list of str)."""
        self._check_key(key)
        if elem_type == ValueType.ARRAY:
            raise GGUFError(f"{key}: nested arrays are not supported")
        if elem_type == ValueType.STRING:
            values = list(values)  # one type test for all (a vocabulary is 100k strings)
            if not all(isinstance(v, str) for v in values):
                bad = next(v for v in values if not isinstance(v, str))
                raise GGUFError(f"{key}: string expected, got {type(bad).__name__}")
        else:
            arr = np.asarray(values)
            if arr.ndim != 1:
                raise GGUFError(f"{key}: array must be 1-D, got shape {arr.shape}")
            if elem_type in _INT_RANGES and arr.size:
                if not np.issubdtype(arr.dtype, np.integer) and not np.issubdtype(arr.dtype, np.bool_):
                    raise GGUFError(f"{key}: integer array expected, got {arr.dtype}")
                lo, hi = _INT_RANGES[elem_type]
                if int(arr.min()) < lo or int(arr.max()) > hi:
                    raise GGUFError(f"{key}: values out of range for {VALUE_TYPE_NAMES[elem_type]}")
            values = arr.astype(_SCALAR_NUMPY[elem_type])
        self.kv[key] = (ValueType.ARRAY, values, elem_type)

    def add_string(self, key, value):
        self.add(key, ValueType.STRING, value)

    def add_uint32(self, key, value):
        self.add(key, ValueType.UINT32, value)

    def add_int32(self, key, value):
        self.add(key, ValueType.INT32, value)

    def add_float32(self, key, value):
        self.add(key, ValueType.FLOAT32, value)

    def add_bool(self, key, value):
        self.add(key, ValueType.BOOL, value)

    def _check_key(self, key):
        if not isinstance(key, str) or not key:
            raise GGUFError(f"metadata key must be a non-empty string, got {key!r}")
        if key in self.kv:
            raise GGUFError(f"duplicate metadata key {key!r}")

    @staticmethod
    def _check_scalar(key, vtype, value):
        if vtype == ValueType.STRING:
            if not isinstance(value, str):
                raise GGUFError(f"{key}: string expected, got {type(value).__name__}")
            return value
        if vtype == ValueType.BOOL:
            return bool(value)
        if vtype in _INT_RANGES:
            lo, hi = _INT_RANGES[vtype]
            if int(value) != value or not lo <= int(value) <= hi:
                raise GGUFError(f"{key}: {value!r} does not fit {VALUE_TYPE_NAMES[vtype]}")
            return int(value)
        if vtype in (ValueType.FLOAT32, ValueType.FLOAT64):
            return float(value)
        raise GGUFError(f"{key}: unknown value type {vtype}")

    # --- tensors
    def add_tensor(self, name, array, ggml_type=None, shape=None, check=None):
        """Adds a tensor from a numpy array (row-major; ne = reversed shape).

        ggml_type: F32/F16/BF16 convert the values; Q8_0 quantizes float input.
        Default: F32 for float32/float64 input, F16 for float16 input.
        `array` may also be a function returning the array, or an object with .shape
        and .array(), with `shape` given: it is only read when write() reaches the
        tensor, so a converter holds one converted tensor at a time, never the whole
        model. check(array), if given, runs on the values then (and may raise).
        A contiguous view of a memory-mapped file (np.memmap) whose bytes are already
        the output's (f32 into F32, f16 into F16) is copied file to file by the kernel.
        """
        if not name or name in self.tensors:
            raise GGUFError(f"tensor name {name!r} is empty or already used")
        if len(name.encode("utf-8")) >= 64:
            raise GGUFError(f"tensor name {name!r} is longer than ggml's 63-byte limit")
        lazy = callable(array) or hasattr(array, "array")
        if lazy:
            if shape is None:
                raise GGUFError(f"{name}: a tensor given as a function needs its shape")
            shape = tuple(int(d) for d in shape)
        else:
            array = np.asarray(array) if not isinstance(array, np.ndarray) else array
            shape = array.shape
        if not 1 <= len(shape) <= GGML_MAX_DIMS:
            raise GGUFError(f"{name}: tensors need 1..{GGML_MAX_DIMS} dimensions, got shape {shape}")
        if ggml_type is None:
            ggml_type = GGMLType.F16 if not lazy and array.dtype == np.float16 else GGMLType.F32
        if ggml_type not in (GGMLType.F32, GGMLType.F16, GGMLType.BF16, GGMLType.Q8_0):
            raise GGUFError(f"{name}: unsupported ggml type {ggml_type}")
        if ggml_type == GGMLType.Q8_0 and shape[-1] % QK8_0:
            raise GGUFError(f"{name}: Q8_0 needs the inner dimension to be a multiple of {QK8_0}, got {shape[-1]}")
        ne = [int(d) for d in reversed(shape)]
        self.tensors[name] = (ne, ggml_type, (array, check))

    @staticmethod
    def _tensor_values(name, ne, source):
        """The tensor's values (an array, possibly a view of a memory map), checked."""
        array, check = source
        if callable(array):
            array = array()
        elif hasattr(array, "array"):
            array = array.array()
        array = array if isinstance(array, np.ndarray) else np.asarray(array)
        if array.shape != tuple(reversed(ne)):
            raise GGUFError(f"{name}: got an array of shape {array.shape}, expected {tuple(reversed(ne))}")
        if check:
            check(array)
        return array

    @staticmethod
    def _tensor_data(name, ne, ggml_type, array):
        """The bytes of one tensor, converted to its ggml type."""
        if ggml_type == GGMLType.F32:
            data = _transposed_copy(array) if _is_transposed_f32(array) else np.ascontiguousarray(array, dtype="<f4")
        elif ggml_type == GGMLType.F16:
            data = np.ascontiguousarray(array, dtype="<f2")
        elif ggml_type == GGMLType.BF16:
            data = f32_to_bf16_bits(array).astype("<u2")
        else:
            data = quantize_q8_0(array)
        if data.nbytes != tensor_nbytes(ne, ggml_type):
            raise GGUFError(f"{name}: internal size mismatch")
        return data

    # --- output
    def alignment(self):
        if "general.alignment" not in self.kv:
            return DEFAULT_ALIGNMENT
        vtype, value, _ = self.kv["general.alignment"]
        if vtype != ValueType.UINT32 or value <= 0 or value & (value - 1):
            raise GGUFError(f"general.alignment must be a uint32 power of two, got {value!r}")
        return value

    def write(self, progress=None):
        """Writes the file. progress(i, n, name) is called before each tensor's data."""
        alignment = self.alignment()
        tmp = self.path + ".tmp"
        try:
            with open(tmp, "wb") as f:
                f.write(GGUF_MAGIC + struct.pack("<IQQ", GGUF_VERSION, len(self.tensors), len(self.kv)))
                for key, (vtype, value, elem_type) in self.kv.items():
                    f.write(_pack_string(key) + struct.pack("<I", vtype))
                    f.write(_pack_value(vtype, value, elem_type))
                offset = 0
                for name, (ne, ggml_type, _) in self.tensors.items():
                    f.write(_pack_string(name) + struct.pack("<I", len(ne)))
                    f.write(struct.pack(f"<{len(ne)}Q", *ne) + struct.pack("<IQ", ggml_type, offset))
                    nbytes = tensor_nbytes(ne, ggml_type)
                    offset += nbytes + _pad(nbytes, alignment)
                f.write(b"\0" * _pad(f.tell(), alignment))
                f.flush()  # the data section goes straight to the descriptor
                for i, (name, (ne, ggml_type, source)) in enumerate(self.tensors.items()):
                    if progress:
                        progress(i, len(self.tensors), name)
                    array = self._tensor_values(name, ne, source)
                    nbytes = tensor_nbytes(ne, ggml_type)
                    span = file_span(array) if _VERBATIM.get(ggml_type) == array.dtype.str else None
                    if span is None or not copy_span(span, nbytes, f.fileno()):
                        write_all(f.fileno(), self._tensor_data(name, ne, ggml_type, array))
                    write_all(f.fileno(), b"\0" * _pad(nbytes, alignment))
                    release_pages(array)
                    if hasattr(source[0], "release"):
                        source[0].release()
                    del array  # one converted tensor alive at a time
            os.replace(tmp, self.path)
        except BaseException:
            try:
                os.remove(tmp)
            except OSError:
                pass
            raise


def _is_transposed_f32(a):
    return a.ndim == 2 and a.dtype == np.float32 and a.T.flags.c_contiguous and not a.flags.c_contiguous


def _transposed_copy(a):
    """np.ascontiguousarray of a transposed 2-D view (Hugging Face's Conv1D weights), in
    bands of 8 source rows: each band writes 32 contiguous bytes per output row, 3.5x
    less CPU than numpy's element-by-element strided copy on a 768 x 3072 matrix."""
    src, out = a.T, np.empty(a.shape, dtype=np.float32)
    for i in range(0, src.shape[0], 8):
        out[:, i:i + 8] = src[i:i + 8].T
    return out


# Output types whose bytes are the input's when the input has this numpy dtype.
_VERBATIM = {GGMLType.F32: "<f4", GGMLType.F16: "<f2"}


def _pack_string(s):
    b = s.encode("utf-8")
    return struct.pack("<Q", len(b)) + b


def _pack_value(vtype, value, elem_type):
    if vtype == ValueType.STRING:
        return _pack_string(value)
    if vtype == ValueType.ARRAY:
        head = struct.pack("<IQ", elem_type, len(value))
        if elem_type == ValueType.STRING:
            return head + b"".join(_pack_string(s) for s in value)
        return head + value.tobytes()
    return struct.pack("<" + _SCALAR_FORMATS[vtype], value)


# ---------------------------------------------------------------- reader
class Field:
    """One metadata entry. value: python scalar/str, list of str, or 1-D numpy array."""

    def __init__(self, key, vtype, value, elem_type=None):
        self.key, self.type, self.value, self.elem_type = key, vtype, value, elem_type

    def __repr__(self):
        t = VALUE_TYPE_NAMES[self.type]
        if self.type == ValueType.ARRAY:
            t += f"[{VALUE_TYPE_NAMES[self.elem_type]}]"
        return f"Field({self.key!r}, {t}, {self.value!r})"


class Tensor:
    """One tensor: ne (ggml order), ggml type, absolute file offset and its raw data view.

    data: float32/float16 array of numpy shape ne[::-1] for F32/F16, uint16 bit
    patterns for BF16, uint8 blocks for Q8_0. to_float32() decodes any of them.
    """

    def __init__(self, name, ne, ggml_type, offset, data):
        self.name, self.ne, self.ggml_type, self.offset, self.data = name, ne, ggml_type, offset, data

    @property
    def shape(self):
        return tuple(reversed(self.ne))

    def to_float32(self):
        if self.ggml_type in (GGMLType.F32, GGMLType.F16):
            return self.data.astype(np.float32)
        if self.ggml_type == GGMLType.BF16:
            return bf16_bits_to_f32(self.data)
        return dequantize_q8_0(self.data, self.ne)


class GGUFReader:
    """Parses a GGUF v3 file; every read is bounds-checked and errors name the offset."""

    def __init__(self, path):
        self.path = path
        self._buf = np.memmap(path, dtype=np.uint8, mode="r") if os.path.getsize(path) else np.zeros(0, np.uint8)
        self._pos = 0
        self.fields = OrderedDict()
        self.tensors = OrderedDict()
        self._parse()

    def value(self, key, default=None):
        return self.fields[key].value if key in self.fields else default

    # --- primitive reads
    def _fail(self, what):
        raise GGUFError(f"{self.path}: offset {self._pos}: {what}")

    def _take(self, n, what):
        if n < 0 or self._pos + n > len(self._buf):
            self._fail(f"{what} needs {n} bytes but the file has {len(self._buf) - self._pos} left")
        b = self._buf[self._pos:self._pos + n]
        self._pos += n
        return b

    def _unpack(self, fmt, what):
        size = struct.calcsize(fmt)
        return struct.unpack(fmt, self._take(size, what).tobytes())

    def _string(self, what):
        (n,) = self._unpack("<Q", what + " length")
        raw = self._take(n, what).tobytes()
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as e:
            self._fail(f"{what} is not valid UTF-8 ({e})")

    def _scalar(self, vtype, what):
        if vtype not in _SCALAR_FORMATS:
            self._fail(f"{what}: unknown value type {vtype}")
        if vtype == ValueType.BOOL:
            (b,) = self._unpack("<B", what)
            if b > 1:
                self._fail(f"{what}: bool must be 0 or 1, found {b}")
            return bool(b)
        return self._unpack("<" + _SCALAR_FORMATS[vtype], what)[0]

    # --- structure
    def _parse(self):
        magic = self._take(4, "magic").tobytes()
        if magic != GGUF_MAGIC:
            self._pos = 0
            self._fail(f"not a GGUF file: magic {magic!r}, expected {GGUF_MAGIC!r}")
        (version,) = self._unpack("<I", "version")
        if version != GGUF_VERSION:
            self._fail(f"GGUF version {version} is not supported (expected {GGUF_VERSION})")
        n_tensors, n_kv = self._unpack("<QQ", "tensor/kv counts")
        remaining = len(self._buf) - self._pos
        if n_kv > remaining // 13 or n_tensors > remaining // 29:  # smallest possible entries
            self._fail(f"counts n_tensors={n_tensors} n_kv={n_kv} cannot fit in the file")
        for _ in range(n_kv):
            key = self._string("metadata key")
            if key in self.fields:
                self._fail(f"duplicate metadata key {key!r}")
            (vtype,) = self._unpack("<I", f"type of {key}")
            self.fields[key] = self._field(key, vtype)
        infos, seen = [], set()
        for _ in range(n_tensors):
            name = self._string("tensor name")
            if name in seen:
                self._fail(f"duplicate tensor name {name!r}")
            seen.add(name)
            (n_dims,) = self._unpack("<I", f"{name}: n_dims")
            if not 1 <= n_dims <= GGML_MAX_DIMS:
                self._fail(f"{name}: n_dims={n_dims} outside 1..{GGML_MAX_DIMS}")
            ne = list(self._unpack(f"<{n_dims}Q", f"{name}: ne"))
            ggml_type, offset = self._unpack("<IQ", f"{name}: type/offset")
            infos.append((name, ne, ggml_type, offset))
        alignment = DEFAULT_ALIGNMENT
        if "general.alignment" in self.fields:
            f = self.fields["general.alignment"]
            if f.type != ValueType.UINT32 or f.value <= 0 or f.value & (f.value - 1):
                self._fail(f"general.alignment must be a uint32 power of two, got {f!r}")
            alignment = f.value
        self.alignment = alignment
        self.data_offset = self._pos + _pad(self._pos, alignment)
        spans = []
        for name, ne, ggml_type, offset in infos:
            if ggml_type not in GGML_BLOCK:
                raise GGUFError(f"{self.path}: tensor {name}: unsupported ggml type {ggml_type}")
            if offset % alignment:
                raise GGUFError(f"{self.path}: tensor {name}: offset {offset} is not a multiple of {alignment}")
            try:
                nbytes = tensor_nbytes(ne, ggml_type)
            except GGUFError as e:
                raise GGUFError(f"{self.path}: tensor {name}: {e}") from None
            start = self.data_offset + offset
            if start + nbytes > len(self._buf):
                raise GGUFError(f"{self.path}: tensor {name}: data [{start}, {start + nbytes}) "
                                f"runs past the end of the file ({len(self._buf)} bytes)")
            spans.append((offset, offset + nbytes, name))
            raw = self._buf[start:start + nbytes]
            shape = tuple(reversed(ne))
            if ggml_type == GGMLType.F32:
                data = raw.view("<f4").reshape(shape)
            elif ggml_type == GGMLType.F16:
                data = raw.view("<f2").reshape(shape)
            elif ggml_type == GGMLType.BF16:
                data = raw.view("<u2").reshape(shape)
            else:
                data = raw
            self.tensors[name] = Tensor(name, ne, ggml_type, start, data)
        spans.sort()
        for (_, end_a, a), (start_b, _, b) in zip(spans, spans[1:]):
            if start_b < end_a:
                raise GGUFError(f"{self.path}: tensors {a} and {b} overlap in the data section")

    def _field(self, key, vtype):
        if vtype == ValueType.STRING:
            return Field(key, vtype, self._string(key))
        if vtype != ValueType.ARRAY:
            return Field(key, vtype, self._scalar(vtype, key))
        elem_type, count = self._unpack("<IQ", f"{key}: array header")
        if elem_type == ValueType.STRING:
            if count > (len(self._buf) - self._pos) // 8:
                self._fail(f"{key}: {count} strings cannot fit in the file")
            return Field(key, vtype, [self._string(f"{key}[{i}]") for i in range(count)], elem_type)
        if elem_type not in _SCALAR_NUMPY:
            self._fail(f"{key}: unsupported array element type {elem_type}")
        dt = np.dtype(_SCALAR_NUMPY[elem_type])
        if count > (len(self._buf) - self._pos) // dt.itemsize:
            self._fail(f"{key}: {count} elements of {VALUE_TYPE_NAMES[elem_type]} cannot fit in the file")
        arr = np.array(self._take(count * dt.itemsize, key).view(dt))
        if elem_type == ValueType.BOOL:
            if arr.size and arr.max() > 1:
                self._fail(f"{key}: bool array element not 0 or 1")
            arr = arr.astype(bool)
        return Field(key, vtype, arr, elem_type)


def _describe(value, full):
    if isinstance(value, list) or isinstance(value, np.ndarray):
        items = list(value[:8]) if not full else list(value)
        more = "" if full or len(value) <= 8 else f", ... ({len(value)} items)"
        return "[" + ", ".join(repr(v.item() if hasattr(v, "item") else v) for v in items) + more + "]"
    return repr(value)


def main():
    ap = argparse.ArgumentParser(description="Print the metadata and tensor table of a GGUF file.")
    ap.add_argument("file")
    ap.add_argument("--tensors", action="store_true", help="list every tensor (name, type, ne, offset)")
    ap.add_argument("--kv-arrays", action="store_true", help="print arrays in full")
    args = ap.parse_args()
    try:
        r = GGUFReader(args.file)
    except (GGUFError, OSError) as e:
        print(f"gguf.py: error: {e}", file=sys.stderr)
        return 1
    print(f"{args.file}: GGUF v{GGUF_VERSION}, {len(r.fields)} metadata keys, {len(r.tensors)} tensors, "
          f"alignment {r.alignment}, data at {r.data_offset}")
    for key, f in r.fields.items():
        t = VALUE_TYPE_NAMES[f.type] + (f"[{VALUE_TYPE_NAMES[f.elem_type]}]" if f.elem_type is not None else "")
        print(f"  {key} ({t}) = {_describe(f.value, args.kv_arrays)}")
    if args.tensors:
        for t in r.tensors.values():
            print(f"  {t.name:32s} {GGML_TYPE_NAMES[t.ggml_type]:5s} ne={t.ne} offset={t.offset}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
