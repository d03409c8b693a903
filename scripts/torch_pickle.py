#!/usr/bin/env python3
"""Reads torch.save's zip archives with numpy only, refusing anything that could run code.

Format (torch.serialization, "new zipfile format", torch >= 1.6):
  PREFIX/data.pkl      a pickle (protocol 2) of the saved object; every tensor is
                       torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)
                       whose storage is a persistent id ("storage", torch.FloatStorage,
                       KEY, location, numel)
  PREFIX/data/KEY      the raw little-endian bytes of storage KEY (stored, not compressed,
                       and 64-byte aligned by torch)
  PREFIX/byteorder     "little" (absent in older files, which are little-endian)

Storages are not read when the pickle is: each one is a numpy view of a memory map
of the archive, made when a tensor is asked for its values (LazyTensor.array()).
So a nanoGPT ckpt.pt whose optimizer state is twice the model costs nothing for the
optimizer, and a model tensor is never copied unless it is not contiguous.

The unpickler allows exactly the globals torch.save emits for tensors, state
dicts and the plain Python/numpy values nanoGPT keeps beside them:
  collections.OrderedDict, torch._utils._rebuild_tensor_v2 / _rebuild_parameter,
  torch.*Storage (dtype markers), numpy scalars (numpy.core.multiarray.scalar with
  numpy.dtype of a numeric type, and _codecs.encode(..., "latin1") for their bytes).
Anything else (os.system, builtins.eval, torch.nn modules, ...) is refused with
the file named.
"""
import codecs
import pickle
import struct
import zipfile
from collections import OrderedDict

import numpy as np


class CheckpointError(Exception):
    """A checkpoint folder or file is missing, malformed or unsafe."""


STORAGE_TYPES = {
    "FloatStorage": "<f4", "HalfStorage": "<f2", "BFloat16Storage": "<u2", "DoubleStorage": "<f8",
    "LongStorage": "<i8", "IntStorage": "<i4", "ShortStorage": "<i2", "CharStorage": "i1",
    "ByteStorage": "u1", "BoolStorage": "?",
}
# numpy dtypes a pickled numpy scalar may have (numbers only: no object or void dtypes).
SCALAR_DTYPES = {"f2", "f4", "f8", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", "b1"}


def bf16_to_f32(bits):
    """bfloat16 bit patterns (uint16) -> float32, exact (one pass, one allocation)."""
    bits = np.asarray(bits, dtype=np.uint16)
    out = np.empty(bits.shape, dtype=np.uint32)
    np.left_shift(bits, 16, out=out, dtype=np.uint32)
    return out.view(np.float32)


class StorageType:
    """Stands in for torch.FloatStorage etc.: only carries the element dtype."""

    def __init__(self, name, dtype):
        self.name, self.dtype = name, np.dtype(dtype)


class Storage:
    """One storage of the archive: where its bytes are, resolved on first use."""

    def __init__(self, archive, stype, member, numel):
        self.archive, self.stype, self.member, self.numel = archive, stype, member, numel
        self._array = None

    def array(self):
        if self._array is None:
            self._array = self.archive.storage_bytes(self.member, self.numel * self.stype.dtype.itemsize) \
                .view(self.stype.dtype)
        return self._array


class LazyTensor:
    """A tensor of the checkpoint: dtype and shape known, values read on demand."""

    def __init__(self, storage, offset, shape, stride):
        self.storage, self.offset, self.shape, self.stride = storage, offset, shape, stride

    @property
    def is_bf16(self):
        return self.storage.stype.name == "BFloat16Storage"

    @property
    def dtype(self):
        return np.dtype(np.float32) if self.is_bf16 else self.storage.stype.dtype

    @property
    def ndim(self):
        return len(self.shape)

    def same_data(self, other):
        """True when both are the same view of the same storage (tied weights)."""
        return (isinstance(other, LazyTensor) and other.storage is self.storage and other.offset == self.offset
                and other.shape == self.shape and other.stride == self.stride)

    def array(self):
        """The values: a read-only view of the mapping when contiguous (no copy),
        else a copy; bfloat16 is widened to float32."""
        arr = self.storage.array()
        numel = int(np.prod(self.shape, dtype=np.int64))
        if numel == 0:
            out = np.zeros(self.shape, dtype=arr.dtype)
        elif self.stride == _c_strides(self.shape):  # a slice: stays a view of the np.memmap
            out = arr[self.offset:self.offset + numel].reshape(self.shape)
        else:
            out = np.ascontiguousarray(np.lib.stride_tricks.as_strided(
                arr[self.offset:], shape=self.shape, strides=[s * arr.itemsize for s in self.stride], writeable=False))
        return bf16_to_f32(out).reshape(self.shape) if self.is_bf16 else out


def _c_strides(shape):
    """Row-major strides in elements (dimensions of size 1 may have any stride; torch writes these)."""
    strides, step = [], 1
    for d in reversed(shape):
        strides.append(step)
        step *= d
    return tuple(reversed(strides))


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False,
                       backward_hooks=None, metadata=None):
    """numpy version of torch._utils._rebuild_tensor_v2 with every index checked."""
    if not isinstance(storage, Storage):
        raise CheckpointError("tensor refers to something that is not a storage")
    size, stride = tuple(size), tuple(stride)
    if (len(size) != len(stride) or not all(type(d) is int and d >= 0 for d in size)
            or not all(type(s) is int and s >= 0 for s in stride)
            or type(storage_offset) is not int or storage_offset < 0):
        raise CheckpointError(f"bad tensor geometry offset={storage_offset} size={size} stride={stride}")
    if 0 not in size:
        last = storage_offset + sum((d - 1) * s for d, s in zip(size, stride))
        if last >= storage.numel:
            raise CheckpointError(f"tensor (offset={storage_offset} size={size} stride={stride}) reaches element "
                                  f"{last} of a storage with {storage.numel} elements")
    return LazyTensor(storage, storage_offset, size, stride)


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None):
    return data


def _numpy_dtype(name, align=False, copy=False):
    if not isinstance(name, str) or name not in SCALAR_DTYPES:
        raise CheckpointError(f"numpy dtype {name!r} is not a plain number type")
    return np.dtype(name)


def _numpy_scalar(dtype, data=None):
    if not isinstance(dtype, np.dtype) or not isinstance(data, bytes) or len(data) != dtype.itemsize:
        raise CheckpointError("malformed numpy scalar")
    return np.frombuffer(data, dtype=dtype)[0]


def _codecs_encode(text, encoding="utf-8"):
    # Protocol-2 pickles carry a numpy scalar's bytes as a latin-1 string.
    if not isinstance(text, str) or encoding != "latin1":
        raise CheckpointError("_codecs.encode is only accepted for latin1 strings")
    return codecs.encode(text, "latin1")


_ALLOWED = {
    ("collections", "OrderedDict"): OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("numpy", "dtype"): _numpy_dtype,
    ("numpy.core.multiarray", "scalar"): _numpy_scalar,
    ("numpy._core.multiarray", "scalar"): _numpy_scalar,  # numpy >= 2 pickles it under this name
    ("_codecs", "encode"): _codecs_encode,
}


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file, archive):
        super().__init__(file)
        self.archive = archive
        self.storages = {}

    def find_class(self, module, name):
        if (module, name) in _ALLOWED:
            return _ALLOWED[(module, name)]
        if module == "torch" and name in STORAGE_TYPES:
            return StorageType(name, STORAGE_TYPES[name])
        raise CheckpointError(f"{self.archive.path}: refusing to load global '{module}.{name}' from the pickle "
                              f"(only tensors, state dicts and plain values are accepted; this file may run code)")

    def persistent_load(self, pid):
        if (not isinstance(pid, tuple) or len(pid) != 5 or pid[0] != "storage"
                or not isinstance(pid[1], StorageType) or not isinstance(pid[2], str)
                or type(pid[4]) is not int or pid[4] < 0):
            raise CheckpointError(f"{self.archive.path}: unexpected persistent id {pid!r}")
        _, stype, key, _location, numel = pid
        if key not in self.storages:
            member = f"{self.archive.prefix}data/{key}"
            self.archive.check_storage(member, numel * stype.dtype.itemsize, numel, stype.name)
            self.storages[key] = Storage(self.archive, stype, member, numel)
        return self.storages[key]


class TorchArchive:
    """An open torch.save zip archive; load() returns the unpickled object, its
    tensors as LazyTensor. Keep the archive alive while tensors are read."""

    def __init__(self, path):
        self.path = path
        if not zipfile.is_zipfile(path):
            raise CheckpointError(f"{path}: not a zip archive (the legacy pre-1.6 torch format is not "
                                  f"supported; re-save it with torch.save in a recent torch)")
        self.zf = zipfile.ZipFile(path)
        pkls = [n for n in self.zf.namelist() if n.endswith("/data.pkl") and n.count("/") == 1]
        if len(pkls) != 1:
            raise CheckpointError(f"{path}: expected exactly one PREFIX/data.pkl in the archive, found {pkls}")
        self.pkl = pkls[0]
        self.prefix = self.pkl[:-len("data.pkl")]
        if self.prefix + "byteorder" in self.zf.namelist():
            order = self.zf.read(self.prefix + "byteorder").decode("ascii", "replace").strip()
            if order != "little":
                raise CheckpointError(f"{path}: byteorder is {order!r}; only little-endian archives are supported")
        self.map = np.memmap(path, dtype=np.uint8, mode="r")

    def load(self):
        with self.zf.open(self.pkl) as f:
            try:
                return _RestrictedUnpickler(f, self).load()
            except CheckpointError:
                raise
            except Exception as e:  # a malformed pickle stream
                raise CheckpointError(f"{self.path}: cannot unpickle {self.pkl}: {type(e).__name__}: {e}") from None

    def check_storage(self, member, nbytes, numel, type_name):
        try:
            info = self.zf.getinfo(member)
        except KeyError:
            raise CheckpointError(f"{self.path}: storage {member} is missing from the archive") from None
        if info.file_size < nbytes:
            raise CheckpointError(f"{self.path}: storage {member} has {info.file_size} bytes, "
                                  f"expected {nbytes} for {numel} elements of {type_name}")

    def storage_bytes(self, member, nbytes):
        """uint8 view of a member's first nbytes: into the mapping for stored
        (uncompressed) members, as torch writes them; a copy otherwise."""
        info = self.zf.getinfo(member)
        if info.compress_type != zipfile.ZIP_STORED:
            return np.frombuffer(self.zf.read(member)[:nbytes], dtype=np.uint8)
        h = info.header_offset
        local = self.map[h:h + 30].tobytes()
        if len(local) < 30 or local[:4] != b"PK\x03\x04":
            raise CheckpointError(f"{self.path}: no local zip header for {member} at offset {h}")
        name_len, extra_len = struct.unpack("<HH", local[26:30])
        start = h + 30 + name_len + extra_len
        if start + nbytes > len(self.map):
            raise CheckpointError(f"{self.path}: storage {member} runs past the end of the file")
        return self.map[start:start + nbytes]


def materialize(obj):
    """Replaces every LazyTensor inside dicts/lists/tuples by its numpy array (tests, small files)."""
    if isinstance(obj, LazyTensor):
        return obj.array()
    if isinstance(obj, dict):
        return type(obj)((k, materialize(v)) for k, v in obj.items())
    if isinstance(obj, (list, tuple)):
        return type(obj)(materialize(v) for v in obj)
    return obj
