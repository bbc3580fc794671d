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


def tie_groups(n: int, ties: Sequence[tuple[int, int]]) -> list[tuple[int, ...]]:
    """For each of n buffers, the buffers tied to it (itself included, in index order): one offset for all."""
    root = list(range(n))

    def find(i: int) -> int:
        while root[i] != i:
            root[i] = root[root[i]]
            i = root[i]
        return i

    for a, b in ties:
        root[find(a)] = find(b)
    members: dict[int, list[int]] = {}
    for i in range(n):
        members.setdefault(find(i), []).append(i)
    return [tuple(members[find(i)]) for i in range(n)]


def greedy_by_size(buffers: list[Buffer], overlaps: Sequence[Overlap] = (),
                   ties: Sequence[tuple[int, int]] = ()) -> Placement:
    """TensorFlow Lite Micro's greedy planner: largest buffer first, each at the lowest offset
    where it overlaps no already-placed buffer that is live at the same time. With `overlaps`
    (kernels/overlap.py contracts), a buffer may also lie over a related one where its contract allows:
    the offsets tried are then 0, the ends of the live placed buffers and the ends of each related
    buffer's allowed range. `ties`: pairs of buffers (live at different times) that must share one offset
    (a layer's buffer and the same buffer of the next pass through the layer, plan/layers.py): placed together
    when the first of them comes, at the lowest offset that suits all of them."""
    rel = ranges(overlaps)
    groups = tie_groups(len(buffers), ties)
    order = sorted(range(len(buffers)), key=lambda i: (-buffers[i].size, buffers[i].first, buffers[i].name))
    offsets = [0] * len(buffers)
    placed: list[int] = []
    done: set[int] = set()   # tied buffers placed with the first of their group
    for i in order:
        if i in done:
            continue
        b = buffers[i]
        if len(groups[i]) > 1:
            offsets[i] = _lowest_shared(groups[i], placed, offsets, buffers, rel)
            for j in groups[i]:
                offsets[j] = offsets[i]
                placed.append(j)
                done.add(j)
            continue
        live = [j for j in placed if buffers[j].first <= b.last and b.first <= buffers[j].last]
        related = [j for j in live if (i, j) in rel]
        if related:
            offsets[i] = _lowest_shared((i,), placed, offsets, buffers, rel)
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


def _lowest_shared(members: tuple[int, ...], placed: list[int], offsets: list[int], buffers: list[Buffer],
                   rel: dict[tuple[int, int], tuple[int, int]]) -> int:
    """The lowest offset at which every one of `members` (one buffer, or tied ones) overlaps no placed buffer
    live at its time, except a related one within its allowed range."""
    live = {i: [j for j in placed if buffers[j].first <= buffers[i].last and buffers[i].first <= buffers[j].last]
            for i in members}

    def ok(i: int, off: int) -> bool:
        size = buffers[i].size
        for j in live[i]:
            oj, sj = offsets[j], buffers[j].size
            if off + size <= oj or oj + sj <= off:
                continue
            r = rel.get((i, j))
            if r is None or not r[0] <= off - oj <= r[1]:
                return False
        return True

    align = max(buffers[i].align for i in members)
    cands = {0}
    for i in members:
        cands |= {_align(offsets[j] + buffers[j].size, align) for j in live[i]}
        for j in live[i]:
            if (i, j) in rel:
                lo, hi = rel[(i, j)]
                cands |= {_align(offsets[j] + lo, align), (offsets[j] + hi) // align * align}
    return next(off for off in sorted(c for c in cands if c >= 0) if all(ok(i, off) for i in members))
