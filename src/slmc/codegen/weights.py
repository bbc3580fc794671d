"""All constants in one read-only blob (weights.bin), linked with `.incbin` so a 60 MB model
compiles in a second, and found in C at fixed, aligned offsets. Identical constants (the same
weights seen by the decode and the prompt graph) are stored once.

On a target whose weights stream from slow flash, the constants named in `in_ram` go into a second
blob (weights_ram.bin) linked as initialised data: the C runtime copies it into SRAM at boot, so those
weights are read from SRAM every token (driver.py chooses them to fill the SRAM the plan leaves free)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from slmc.cquote import LOCAL_PREFIXES, LOCALS, Names
from slmc.ir import DType, Graph, Value

ALIGN = 16


@dataclass(frozen=True)
class WeightEntry:
    symbol: str
    offset: int
    nbytes: int
    dtype: DType
    shape: tuple[int, ...]
    region: str = "flash"        # "flash": weights.bin, read-only; "ram": weights_ram.bin, copied to SRAM at boot


@dataclass(frozen=True)
class WeightsLayout:
    entries: tuple[WeightEntry, ...]
    by_value: dict[int, int]     # id(Value) -> index into entries
    blob: bytes
    ram_blob: bytes = b""

    @property
    def nbytes(self) -> int:
        return sum(e.nbytes for e in self.entries)

    @property
    def ram_bytes(self) -> int:
        return sum(e.nbytes for e in self.entries if e.region == "ram")

    def entry(self, v: Value) -> WeightEntry:
        return self.entries[self.by_value[id(v)]]


def layout_weights(graphs: list[Graph], in_ram: frozenset[str] = frozenset()) -> WeightsLayout:
    """`in_ram`: symbols of the constants copied to SRAM at boot (weights_ram.bin)."""
    entries: list[WeightEntry] = []
    by_value: dict[int, int] = {}
    by_hash: dict[tuple, int] = {}
    names = Names(LOCALS, avoid=LOCAL_PREFIXES)  # model.c's file-scope symbols, never shadowed by a generated local
    chunks: dict[str, list[bytes]] = {"flash": [], "ram": []}
    off = {"flash": 0, "ram": 0}
    for g in graphs:
        for v in g.consts():
            data = np.ascontiguousarray(v.data)
            raw = data.tobytes()
            key = (v.dtype, v.shape, hashlib.sha1(raw).hexdigest())
            if key not in by_hash:
                sym = names.add(v.name)
                region = "ram" if sym in in_ram else "flash"
                pad = (-off[region]) % ALIGN
                chunks[region].append(b"\0" * pad)
                off[region] += pad
                by_hash[key] = len(entries)
                entries.append(WeightEntry(sym, off[region], len(raw), v.dtype, v.shape, region))
                chunks[region].append(raw)
                off[region] += len(raw)
            by_value[id(v)] = by_hash[key]
    return WeightsLayout(tuple(entries), by_value, b"".join(chunks["flash"]), b"".join(chunks["ram"]))


ROW_READS = ("embedding", "rope", "pos_embedding")  # ops that read one row of a table per token row


def _readers(layout: WeightsLayout, graphs: list[Graph]) -> dict[int, set[str]]:
    """entry index -> the ops that read it (views looked through: a constant read only through a view has none)."""
    from slmc.ir.ops import VIEWS

    readers: dict[int, set[str]] = {}
    for g in graphs:
        for n in g.nodes:
            if n.op in VIEWS:
                continue
            for v in n.inputs:
                if v is not None and id(v) in layout.by_value:
                    readers.setdefault(layout.by_value[id(v)], set()).add(n.op)
    return readers


def _row_table(ops: set[str] | None) -> bool:
    return bool(ops) and all(op.startswith(ROW_READS) for op in ops)  # type: ignore[union-attr]


def read_bytes_per_step(layout: WeightsLayout, graphs: list[Graph], region: str | None = None, rows: int = 1) -> int:
    """The constant bytes a step of `rows` token rows reads (in `region`, or in both): every byte of a matrix
    once; of a table that only row-reading ops read (token embeddings, RoPE's cos/sin, learned positions: shape
    [positions or tokens, ...]) one row per token row; a constant whose readers are unknown (read through a view)
    whole, one the graphs do not hold not at all. A mixture of experts' stacked experts count whole here
    (toolchain/profile.py takes off the unread)."""
    readers = _readers(layout, graphs)
    held = {layout.by_value[id(v)] for g in graphs for v in g.consts() if id(v) in layout.by_value}
    total = 0
    for i, e in enumerate(layout.entries):
        if (region is not None and e.region != region) or i not in held:
            continue
        ops = readers.get(i)
        table = _row_table(ops) and len(e.shape) >= 2 and e.shape[0] > 0
        total += min(e.nbytes, rows * (e.nbytes // e.shape[0])) if table else e.nbytes
    return total


def weights_for_sram(layout: WeightsLayout, graphs: list[Graph], budget: int,
                     last: frozenset[int] = frozenset()) -> frozenset[str]:
    """The constants to copy into `budget` bytes of SRAM: every byte of a matrix is read once per token
    from flash, so any byte moved saves the same; tables read one row per token (token embeddings,
    RoPE's cos/sin, learned positions) are left in flash unless a matrix product reads them too (a tied
    classifier), and so are a mixture of experts' stacked experts (a byte is read only when its expert is
    chosen; with an expert cache, from its SRAM slots). Largest first, then the rest that still fit (the
    gaps of alignment counted). The entries in `last` (indices) come after all others (codegen/stage_plan.py: the
    matrices DMA staging can serve)."""
    readers = _readers(layout, graphs)
    cands = sorted((i for i, ops in readers.items() if not _row_table(ops)
                    and not any(op.startswith("moe_experts") for op in ops)),
                   key=lambda i: (i in last, -layout.entries[i].nbytes))
    chosen, left = set(), budget
    for i in cands:
        need = layout.entries[i].nbytes + ALIGN
        if need <= left:
            chosen.add(layout.entries[i].symbol)
            left -= need
    return frozenset(chosen)
