"""Reading untrusted model files: regular files only, sizes checked before anything is read or allocated.

Every loader goes through here so that the same rules hold for llama2.c checkpoints, HuggingFace folders
and tokenizers: a FIFO, a device such as /dev/zero or a folder is refused before a byte is read (reading
one would block or never end), a file is never read whole before its header says how big it must be, and
a value quoted from a file into an error message is shortened and kept on one line.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import BinaryIO

import numpy as np

from slmc.errors import SlmcError

MAX_JSON_BYTES = 16 << 20  # config.json and index files are kilobytes; a bigger one is not what it claims


def show(value: object, limit: int = 60) -> str:
    """A value read from a file, for an error message: repr (so newlines and control characters are escaped)
    and cut to `limit` characters, so a hostile file cannot flood or split the one-line error."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def open_regular(path: Path, what: str, fix: str, max_bytes: int | None = None) -> tuple[BinaryIO, int]:
    """`path` opened for reading, and its size, if it is a regular file of at most `max_bytes` bytes.

    O_NONBLOCK makes opening a FIFO return at once instead of waiting for a writer; fstat on the opened
    descriptor (not a stat of the name beforehand) means the file checked is the file read."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise SlmcError(f"cannot read {what} {path}: it does not exist", fix) from None
    except OSError as e:
        raise SlmcError(f"cannot read {what} {path}: {e.strerror}", fix) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            kind = "a folder" if stat.S_ISDIR(st.st_mode) else "not a regular file (a pipe, socket or device)"
            raise SlmcError(f"{what} {path} is {kind}", fix)
        if max_bytes is not None and st.st_size > max_bytes:
            raise SlmcError(f"{what} {path} is {st.st_size} bytes, more than the {max_bytes} such a file can be",
                            fix)
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb"), st.st_size
    except BaseException:
        os.close(fd)
        raise


def read_exact(f: BinaryIO, n: int, path: Path) -> bytes:
    """`n` bytes from `f`; a short read means the file shrank after its size was checked."""
    data = f.read(n)
    if len(data) != n:
        raise SlmcError(f"{path} changed while it was read (wanted {n} bytes, got {len(data)})",
                        "do not modify the model file while slmc reads it")
    return data


def read_array(f: BinaryIO, dtype: str, shape: tuple[int, ...], path: Path) -> np.ndarray:
    """The next prod(shape) values of `dtype` from `f`, read straight into a fresh array (no second copy)."""
    a = np.empty(shape, dtype=np.dtype(dtype))
    view = memoryview(a).cast("B") if a.size else memoryview(bytearray())
    got = 0
    while got < len(view):
        n = f.readinto(view[got:])
        if not n:
            raise SlmcError(f"{path} changed while it was read (wanted {a.nbytes} bytes, got {got})",
                            "do not modify the model file while slmc reads it")
        got += n
    return a.astype(a.dtype.newbyteorder("=")) if a.dtype.byteorder not in ("=", "|") else a


def read_small(path: Path, what: str, fix: str, max_bytes: int) -> bytes:
    """The whole of a file that is small by nature (a tokenizer, a JSON file), refused past `max_bytes`."""
    f, size = open_regular(path, what, fix, max_bytes)
    with f:
        return read_exact(f, size, path)


def load_json_text(text: str, path: Path, fix: str) -> dict:
    """A JSON object parsed from `text`; anything else (not JSON, too deep, huge numbers, not an object)
    is one SlmcError naming `path`."""
    try:
        obj = json.loads(text)
    except RecursionError:  # the C parser recurses per bracket: '[' * 100000 ends here, not in a traceback
        raise SlmcError(f"{path} nests JSON too deeply", fix) from None
    except ValueError as e:  # JSONDecodeError, and ints past Python's 4300-digit limit
        raise SlmcError(f"{path} is not valid JSON ({str(e).splitlines()[0][:100]})", fix) from None
    if not isinstance(obj, dict):
        raise SlmcError(f"{path} holds a JSON {type(obj).__name__}, not an object", fix)
    return obj


def load_json(path: Path, what: str, fix: str, max_bytes: int = MAX_JSON_BYTES) -> dict:
    """A small JSON object file (config.json, an index), read with the checks of `read_small`."""
    raw = read_small(path, what, fix, max_bytes)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise SlmcError(f"{path} is not valid JSON (not UTF-8 text at byte {e.start})", fix) from None
    return load_json_text(text, path, fix)


def check_finite(a: np.ndarray, name: str, path: Path, layered: bool = False) -> None:
    """Refuse NaN or Inf in a weight: the generated C would compute garbage from it (all-zero ids) without
    a warning. Checked in slices so the temporary mask stays small on a large tensor; `layered`: the first
    axis is the layer, named in the error."""
    if a.dtype.kind != "f":
        return
    flat = a.reshape(-1)
    step = 1 << 22
    for start in range(0, flat.size, step):
        part = flat[start:start + step]
        ok = np.isfinite(part)
        if not ok.all():
            at = start + int(np.argmin(ok))
            where = f" of layer {at // (a.size // a.shape[0])}" if layered and a.ndim > 1 else ""
            raise SlmcError(f"{path}: tensor {name}{where} holds a non-finite value ({part[at - start]}) at "
                            f"flat index {at}", "the checkpoint is corrupt; re-download or re-export it")
