"""safetensors files read directly: 8-byte header length, JSON header, raw little-endian data.

Read here rather than through `safetensors.numpy`, because numpy has no bfloat16 and that module refuses
BF16 files, which is how most Llama checkpoints are published. The header is validated the way the
reference implementation does (every tensor's bytes inside the data section, sized by dtype x shape,
the tensors tiling the section with no overlap, no gap and nothing after them) before any tensor is read;
tensors are then memory-mapped, so a large checkpoint is never read whole.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from slmc.errors import SlmcError
from slmc.frontend.safe_io import check_finite, load_json_text, open_regular, read_exact, show

# dtypes slmc turns into float32 (BF16 is read as its 16 bits, widened by a shift)
READABLE = {"F32": np.dtype("<f4"), "F16": np.dtype("<f2"), "BF16": np.dtype("<u2"), "F64": np.dtype("<f8")}
# every dtype of the format, so a file holding, say, an I64 buffer slmc never reads still validates
ITEMSIZE = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E4M3": 1, "F8_E5M2": 1, "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
            "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8}
MAX_HEADER = 100 << 20  # the safetensors format itself caps the JSON header at 100 MB
MAX_RANK = 8
_FIX = "re-download the model"


@dataclass(frozen=True)
class Entry:
    name: str
    file: Path
    dtype: str
    shape: tuple[int, ...]
    begin: int  # absolute byte offsets in `file`
    end: int


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def read_header(path: Path) -> dict[str, Entry]:
    """The tensors of one safetensors file, each checked against the file's layout rules."""
    bad = f"{path} is not a safetensors file"
    f, size = open_regular(path, "weights file", _FIX)
    with f:
        if size < 8:
            raise SlmcError(f"{bad} ({size} bytes, too short for the header length)", _FIX)
        n = int.from_bytes(read_exact(f, 8, path), "little")
        if not 2 <= n <= min(MAX_HEADER, size - 8):
            raise SlmcError(f"{bad} (header length {n}, file size {size})", _FIX)
        raw = read_exact(f, n, path)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise SlmcError(f"{bad} (its header is not UTF-8 JSON)", _FIX) from None
    try:
        meta = load_json_text(text, path, _FIX)
    except SlmcError as e:
        raise SlmcError(f"{bad} ({e.cause.removeprefix(str(path)).strip()})", _FIX) from None
    data_len = size - 8 - n
    out: dict[str, Entry] = {}
    for name, e in meta.items():
        if name == "__metadata__":
            if not isinstance(e, dict):
                raise SlmcError(f"{bad} (__metadata__ is not an object)", _FIX)
            continue
        b, end, dtype, shape = _entry(path, name, e, data_len)
        out[name] = Entry(name, path, dtype, shape, 8 + n + b, 8 + n + end)
    _check_tiling(path, list(out.values()), 8 + n, size)
    return out


def _entry(path: Path, name: str, e: object, data_len: int) -> tuple[int, int, str, tuple[int, ...]]:
    """(begin, end) relative to the data section, dtype and shape of one header entry."""
    where = f"{path}: tensor {show(name)}"
    if not isinstance(e, dict):
        raise SlmcError(f"{where} is described by {show(e)}, not an object", _FIX)
    dtype, shape, offsets = e.get("dtype"), e.get("shape"), e.get("data_offsets")
    if not isinstance(dtype, str) or dtype not in ITEMSIZE:
        raise SlmcError(f"{where} has dtype {show(dtype)}, not a safetensors dtype", _FIX)
    if (not isinstance(shape, list) or len(shape) > MAX_RANK
            or not all(_is_int(d) and d >= 0 for d in shape)):
        raise SlmcError(f"{where} has shape {show(shape)}, not a list of at most {MAX_RANK} sizes >= 0", _FIX)
    if not isinstance(offsets, list) or len(offsets) != 2 or not all(_is_int(o) for o in offsets):
        raise SlmcError(f"{where} has data_offsets {show(offsets)}, not [begin, end]", _FIX)
    b, end = offsets
    want = math.prod(shape) * ITEMSIZE[dtype]
    if not 0 <= b <= end <= data_len:
        raise SlmcError(f"{path} is truncated or corrupt: tensor {show(name)} lies at bytes {b}..{end} of a "
                        f"{data_len}-byte data section", _FIX)
    if end - b != want:
        raise SlmcError(f"{where} takes {end - b} bytes, but shape {shape} of {dtype} needs {want}", _FIX)
    return b, end, dtype, tuple(shape)


def _check_tiling(path: Path, entries: list[Entry], start: int, size: int) -> None:
    """The tensors must cover the data section exactly once, as the reference loader requires: an
    overlap would let two weights alias, a gap or a tail is data that belongs to nothing."""
    at = start
    prev = "the header"
    for e in sorted(entries, key=lambda e: (e.begin, e.end)):
        if e.begin < at:
            raise SlmcError(f"{path}: tensors {show(prev)} and {show(e.name)} overlap (bytes {e.begin - start}.."
                            f"{e.end - start} begin before {at - start})", _FIX)
        if e.begin > at:
            raise SlmcError(f"{path}: data bytes {at - start}..{e.begin - start} belong to no tensor", _FIX)
        at, prev = e.end, e.name
    if at != size:
        raise SlmcError(f"{path}: the tensors end at data byte {at - start}, the data section holds "
                        f"{size - start} bytes", _FIX)


class Tensors:
    """Reads tensors named in a checked header as float32, memory-mapping each file once."""

    def __init__(self, entries: dict[str, Entry], where: Path) -> None:
        self.entries, self.where = entries, where
        self._maps: dict[Path, np.memmap] = {}

    def get(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        """Tensor `name`, which config.json says has `shape`."""
        e = self.entries.get(name)
        if e is None:
            raise SlmcError(f"{self.where}: tensor {name} is missing", "the weights do not match config.json")
        if e.shape != shape:
            raise SlmcError(f"{self.where}: tensor {name} has shape {list(e.shape)}, config.json implies "
                            f"{list(shape)}", "the weights do not match config.json")
        if e.dtype not in READABLE:
            raise SlmcError(f"{e.file}: tensor {name} has dtype {e.dtype}; float32/float16/bfloat16 are read",
                            "use an unquantized checkpoint")
        raw = np.frombuffer(self._map(e.file)[e.begin:e.end], dtype=READABLE[e.dtype]).reshape(shape)
        # bfloat16 is the top half of a float32
        a = (raw.astype(np.uint32) << 16).view(np.float32) if e.dtype == "BF16" else raw.astype(np.float32)
        check_finite(a, name, e.file)  # F64 values past float32's range become inf here, and are refused too
        return a

    def _map(self, file: Path) -> np.memmap:
        if file not in self._maps:
            # opened again as a regular file: the name could have been swapped for a pipe since the header
            f, size = open_regular(file, "weights file", _FIX)
            with f:
                if size != max(e.end for e in self.entries.values() if e.file == file):
                    raise SlmcError(f"{file} changed while it was read", "do not modify the model while slmc reads it")
                self._maps[file] = np.memmap(f, dtype=np.uint8, mode="r")
        return self._maps[file]
