#!/usr/bin/env python3
"""Moving tensor bytes between memory-mapped files without holding them: where a numpy
view of an np.memmap lies in its file, kernel file-to-file copies (copy_file_range, as
cp does), dropping a view's pages once written, and complete writes to a descriptor.
Used by gguf.py's writer so that converting a checkpoint costs about one tensor of memory.
"""
import mmap
import os

import numpy as np


def file_span(array):
    """(path, offset) of a C-contiguous view of a read-only np.memmap in its file, else None."""
    if not isinstance(array, np.memmap) or not array.flags.c_contiguous or not getattr(array, "filename", None):
        return None
    root = array
    while isinstance(root, np.ndarray):
        root = root.base
    if not isinstance(root, mmap.mmap):
        return None
    start = array.offset - array.offset % mmap.ALLOCATIONGRANULARITY  # where np.memmap mapped the file from
    return array.filename, start + array.ctypes.data - np.frombuffer(root, dtype=np.uint8).ctypes.data


def release_pages(array):
    """Drops a memory-mapped array's pages from this process (MADV_DONTNEED on a read-only
    file mapping: they stay in the page cache and come back if read again), so that the
    resident memory of a conversion is one tensor, not the whole checkpoint."""
    if not isinstance(array, np.memmap):
        return
    root = array
    while isinstance(root, np.ndarray):
        root = root.base
    if not isinstance(root, mmap.mmap) or not hasattr(root, "madvise"):
        return
    begin = array.ctypes.data - np.frombuffer(root, dtype=np.uint8).ctypes.data
    start = begin - begin % mmap.PAGESIZE
    end = min(len(root), begin + array.nbytes)
    if end > start:
        root.madvise(mmap.MADV_DONTNEED, start, end - start)


def copy_span(span, nbytes, out_fd):
    """Copies nbytes at span=(path, offset) to out_fd's position inside the kernel
    (copy_file_range: no pass through Python, as cp does). False when the file
    systems cannot (nothing is written then)."""
    path, offset = span
    if not hasattr(os, "copy_file_range"):
        return False
    start = os.lseek(out_fd, 0, os.SEEK_CUR)
    with open(path, "rb") as src:
        done = 0
        while done < nbytes:
            try:
                n = os.copy_file_range(src.fileno(), out_fd, nbytes - done, offset + done)
            except OSError:
                n = 0
            if n <= 0:  # unsupported here: rewind and let the caller write the bytes
                os.ftruncate(out_fd, start)
                os.lseek(out_fd, start, os.SEEK_SET)
                return False
            done += n
    return True


def write_all(fd, data):
    """os.write until every byte is out (one call writes at most about 2 GiB)."""
    view = memoryview(data).cast("B")
    while len(view):
        view = view[os.write(fd, view):]
