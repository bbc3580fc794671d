"""Overlap contracts (vMCU, MLSys 2024): where a kernel's output may lie over an input it consumes.

A kernel that walks its input in a known order has consumed part of it by the time it writes each
part of its output, so the output may start below the input (or on it) by as much as that order
allows. Each registry entry declares, for its loop order, one `Share` per (output, input) pair that
may overlap; the planner accepts `lo <= out.offset - in.offset <= hi` for that pair instead of
disjointness, and the checker (plan/check.py) replays the order byte by byte.

A contract is a walk in `steps` equal steps: step s reads input chunk s, then writes output chunk s.
`reread`: the chunk is read again after its first write (a matrix product's input row is read once per
output element of that row). `exact`: the walk visits the elements in an order other than memory
order, so only the exact overlay (out.offset == in.offset, equal element sizes) is safe. The ranges
below are the closed forms of the walk; tests/plan/test_sharing.py checks them against the replay
(every offset in range passes it, the first offset above does not).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from slmc.ir import Node


@dataclass(frozen=True)
class Share:
    out: int               # output index
    inp: int               # input index
    steps: int
    in_chunk: int          # bytes of the input consumed per step
    out_chunk: int         # bytes of the output written per step
    reread: bool = False
    exact: bool = False
    why: str = ""          # the loop order it comes from, for the report
    order: Callable[[], np.ndarray] | None = field(default=None, compare=False)  # exact: step of each element

    @property
    def hi(self) -> int:
        """Largest out.offset - in.offset at which no write lands on a byte still to be read."""
        if self.exact:
            return 0
        n, i, o = self.steps, self.in_chunk, self.out_chunk
        if self.reread:   # write s must end before chunk s starts: (s + 1) o + d <= s i
            return -o if i >= o else (n - 1) * i - n * o
        if n == 1:        # everything is read before the first write
            return i
        return i - o if i >= o else (n - 1) * (i - o)   # write s must end before chunk s + 1: (s + 1) o + d <= (s + 1) i

    @property
    def lo(self) -> int:
        """Smallest offset difference of the range (below -out_bytes the two are disjoint anyway)."""
        return 0 if self.exact else -self.steps * self.out_chunk

    def times(self) -> tuple[np.ndarray, np.ndarray]:
        """The replay: per input byte the time of its last read, per output byte the time of its first
        write (times order reads and writes; a write may land on a byte whose last read is earlier)."""
        s = np.arange(self.steps, dtype=np.int64) if self.order is None else self.order().astype(np.int64).ravel()
        last_read = 3 * s + (2 if self.reread else 0)
        first_write = 3 * s + 1
        return np.repeat(last_read, self.in_chunk), np.repeat(first_write, self.out_chunk)


def _bytes(node: Node, out: int, inp: int) -> tuple[int, int]:
    return node.inputs[inp].nbytes, node.outputs[out].nbytes  # type: ignore[union-attr]


def elementwise(*inputs: int, out: int = 0):
    """out[e] is written right after in[e] is read, in memory order (add, swiglu, gelu, the second pass
    of a norm over its row, a quantizer's second pass over its group)."""
    def contract(node: Node) -> tuple[Share, ...]:
        shares = []
        for i in inputs:
            n = node.outputs[out].type.numel
            ib, ob = _bytes(node, out, i)
            if n and node.inputs[i].type.numel == n:  # type: ignore[union-attr]   (not empty, not a broadcast operand)
                shares.append(Share(out, i, n, ib // n, ob // n, why="element by element, in order"))
        return tuple(shares)
    return contract


def by_chunks(inp: int, chunks, why: str, out: int = 0, reread: bool = False):
    """The input and output are walked together in `chunks(node)` equal parts, each read whole before
    its part of the output is written (attention: a head's query, then its output); `reread`: and read
    again while it is written."""
    def contract(node: Node) -> tuple[Share, ...]:
        n = chunks(node)
        ib, ob = _bytes(node, out, inp)
        return (Share(out, inp, n, ib // n, ob // n, reread=reread, why=why),)
    return contract


def in_place(inp: int, order: Callable[[Node], np.ndarray], why: str, out: int = 0):
    """Each output element is written right after the input element at the same index is read, in the
    order `order(node)` gives (the step of each element, in memory order), which is not memory order:
    only the exact overlay is safe, and the replay uses that order."""
    def contract(node: Node) -> tuple[Share, ...]:
        ib, ob = _bytes(node, out, inp)
        if ib != ob:
            return ()
        n = node.outputs[out].type.numel
        return (Share(out, inp, n, ib // n, ob // n, exact=True, why=why, order=lambda: order(node)),)
    return contract


def consumed_first(inp: int, why: str, out: int = 0):
    """The whole input is read (copied or widened into scratch) before the first output byte is written."""
    return by_chunks(inp, lambda n: 1, why, out)
