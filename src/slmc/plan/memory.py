"""Memory planners. Every planner has one signature (DESIGN.md rule 4): buffers in, offsets out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from slmc.plan.lifetimes import Buffer, Overlap


@dataclass(frozen=True)
class Placement:
    offsets: tuple[int, ...]   # one per buffer, in the order given
    size: int                  # bytes the arena needs
    planner: str


def _align(x: int, a: int) -> int:
    return (x + a - 1) // a * a


def ranges(overlaps: Sequence[Overlap]) -> dict[tuple[int, int], tuple[int, int]]:
    """(i, j) -> the allowed range of offset_i - offset_j, both ways round."""
    rel: dict[tuple[int, int], tuple[int, int]] = {}
    for ov in overlaps:
        rel[(ov.out, ov.inp)] = (ov.lo, ov.hi)
        rel[(ov.inp, ov.out)] = (-ov.hi, -ov.lo)
    return rel


def greedy_by_size(buffers: list[Buffer], overlaps: Sequence[Overlap] = ()) -> Placement:
    """TensorFlow Lite Micro's greedy planner: largest buffer first, each at the lowest offset
    where it overlaps no already-placed buffer that is live at the same time. With `overlaps`
    (kernels/overlap.py contracts), a buffer may also lie over a related one where its contract allows:
    the offsets tried are then 0, the ends of the live placed buffers and the ends of each related
    buffer's allowed range."""
    rel = ranges(overlaps)
    order = sorted(range(len(buffers)), key=lambda i: (-buffers[i].size, buffers[i].first, buffers[i].name))
    offsets = [0] * len(buffers)
    placed: list[int] = []
    for i in order:
        b = buffers[i]
        live = [j for j in placed if buffers[j].first <= b.last and b.first <= buffers[j].last]
        related = [j for j in live if (i, j) in rel]
        if related:
            offsets[i] = _lowest_shared(b, i, live, related, offsets, buffers, rel)
            placed.append(i)
            continue
        conflicts = sorted((offsets[j], offsets[j] + buffers[j].size) for j in live)
        off = 0
        for lo, hi in conflicts:
            if off + b.size <= lo:
                break
            off = max(off, _align(hi, b.align))
        offsets[i] = off
        placed.append(i)
    size = max((offsets[i] + buffers[i].size for i in range(len(buffers))), default=0)
    return Placement(tuple(offsets), size, "greedy")


def _lowest_shared(b: Buffer, i: int, live: list[int], related: list[int], offsets: list[int],
                   buffers: list[Buffer], rel: dict[tuple[int, int], tuple[int, int]]) -> int:
    def ok(off: int) -> bool:
        for j in live:
            oj, sj = offsets[j], buffers[j].size
            if off + b.size <= oj or oj + sj <= off:
                continue
            r = rel.get((i, j))
            if r is None or not r[0] <= off - oj <= r[1]:
                return False
        return True

    cands = {0} | {_align(offsets[j] + buffers[j].size, b.align) for j in live}
    for j in related:
        lo, hi = rel[(i, j)]
        cands |= {_align(offsets[j] + lo, b.align), (offsets[j] + hi) // b.align * b.align}
    return next(off for off in sorted(c for c in cands if c >= 0) if ok(off))
