"""Memory planners. Every planner has one signature (DESIGN.md rule 4): buffers in, offsets out."""

from __future__ import annotations

from dataclasses import dataclass

from slmc.plan.lifetimes import Buffer


@dataclass(frozen=True)
class Placement:
    offsets: tuple[int, ...]   # one per buffer, in the order given
    size: int                  # bytes the arena needs
    planner: str


def _align(x: int, a: int) -> int:
    return (x + a - 1) // a * a


def greedy_by_size(buffers: list[Buffer]) -> Placement:
    """TensorFlow Lite Micro's greedy planner: largest buffer first, each at the lowest offset
    where it overlaps no already-placed buffer that is live at the same time."""
    order = sorted(range(len(buffers)), key=lambda i: (-buffers[i].size, buffers[i].first, buffers[i].name))
    offsets = [0] * len(buffers)
    placed: list[int] = []
    for i in order:
        b = buffers[i]
        conflicts = sorted((offsets[j], offsets[j] + buffers[j].size) for j in placed
                           if buffers[j].first <= b.last and b.first <= buffers[j].last)
        off = 0
        for lo, hi in conflicts:
            if off + b.size <= lo:
                break
            off = max(off, _align(hi, b.align))
        offsets[i] = off
        placed.append(i)
    size = max((offsets[i] + buffers[i].size for i in range(len(buffers))), default=0)
    return Placement(tuple(offsets), size, "greedy")
