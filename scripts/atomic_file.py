"""atomic_open: output files written to PATH.tmp.PID and renamed over PATH when
complete, so an interrupted or failing script never leaves a partial file (as
minigpt's OutputFile does for the C++ side)."""
import contextlib
import os


@contextlib.contextmanager
def atomic_open(path, mode="wb", **kwargs):
    tmp = f"{path}.tmp.{os.getpid()}"
    try:
        with open(tmp, mode, **kwargs) as f:
            yield f
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
