"""All constants in one read-only blob (weights.bin), linked with `.incbin` so a 60 MB model
compiles in a second, and found in C at fixed, aligned offsets. Identical constants (the same
weights seen by the decode and the prompt graph) are stored once."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from slmc.ir import DType, Graph, Value

ALIGN = 16


@dataclass(frozen=True)
class WeightEntry:
    symbol: str
    offset: int
    nbytes: int
    dtype: DType
    shape: tuple[int, ...]


@dataclass(frozen=True)
class WeightsLayout:
    entries: tuple[WeightEntry, ...]
    by_value: dict[int, int]     # id(Value) -> index into entries
    blob: bytes

    @property
    def nbytes(self) -> int:
        return sum(e.nbytes for e in self.entries)

    def entry(self, v: Value) -> WeightEntry:
        return self.entries[self.by_value[id(v)]]


def c_ident(name: str) -> str:
    s = "".join(ch if ch.isalnum() else "_" for ch in name)
    return s if s and not s[0].isdigit() else "v_" + s


def layout_weights(graphs: list[Graph]) -> WeightsLayout:
    entries: list[WeightEntry] = []
    by_value: dict[int, int] = {}
    by_hash: dict[tuple, int] = {}
    used: set[str] = set()
    chunks: list[bytes] = []
    off = 0
    for g in graphs:
        for v in g.consts():
            data = np.ascontiguousarray(v.data)
            raw = data.tobytes()
            key = (v.dtype, v.shape, hashlib.sha1(raw).hexdigest())
            if key not in by_hash:
                sym = c_ident(v.name)
                while sym in used:
                    sym += "_"
                used.add(sym)
                pad = (-off) % ALIGN
                chunks.append(b"\0" * pad)
                off += pad
                by_hash[key] = len(entries)
                entries.append(WeightEntry(sym, off, len(raw), v.dtype, v.shape))
                chunks.append(raw)
                off += len(raw)
            by_value[id(v)] = by_hash[key]
    return WeightsLayout(tuple(entries), by_value, b"".join(chunks))
