"""The independent checker every plan passes before code is emitted."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from slmc.plan.lifetimes import Buffer, Overlap
from slmc.plan.memory import Placement


class PlanError(AssertionError):
    pass


def check(buffers: list[Buffer], placement: Placement, overlaps: Sequence[Overlap] = (),
          ties: Sequence[tuple[int, int]] = ()) -> None:
    """Alignment, bounds, and no two buffers live at the same time share a byte, except an output lying
    over an input its kernel consumes (`overlaps`): then the kernel's read and write order is replayed
    over the shared bytes and no write may land on a byte that is still to be read. Tied buffers (`ties`:
    a buffer of decoder layer i and the same buffer of layer 0, plan/layers.py) lie at one offset: model.c
    runs every layer with layer 0's pointers."""
    if len(placement.offsets) != len(buffers):
        raise PlanError("placement does not cover every buffer")
    for a, b in ties:
        if placement.offsets[a] != placement.offsets[b]:
            raise PlanError(f"{buffers[a].name} (offset {placement.offsets[a]}) and {buffers[b].name} (offset "
                            f"{placement.offsets[b]}) are one buffer of the layer loop but lie apart")
    for b, off in zip(buffers, placement.offsets):
        if off < 0 or off % b.align:
            raise PlanError(f"{b.name}: offset {off} is negative or not aligned to {b.align}")
        if off + b.size > placement.size:
            raise PlanError(f"{b.name}: [{off}, {off + b.size}) overruns the arena of {placement.size} bytes")
    shared = {frozenset((ov.out, ov.inp)): ov for ov in overlaps}
    idx = sorted(range(len(buffers)), key=lambda i: buffers[i].first)
    for a_pos, i in enumerate(idx):
        a, ao = buffers[i], placement.offsets[i]
        for j in idx[a_pos + 1:]:
            b, bo = buffers[j], placement.offsets[j]
            if b.first > a.last:
                break
            if ao < bo + b.size and bo < ao + a.size and a.size and b.size:
                ov = shared.get(frozenset((i, j)))
                if ov is None:
                    raise PlanError(f"{a.name} [{ao}, {ao + a.size}) and {b.name} [{bo}, {bo + b.size}) "
                                    f"overlap while both are live (steps {max(a.first, b.first)}..{min(a.last, b.last)})")
                replay(ov, buffers, placement.offsets)


def replay(ov: Overlap, buffers: list[Buffer], offsets: Sequence[int]) -> None:
    """Walk the kernel's order over the bytes the output and the input share: every shared byte must be
    read for the last time before it is first written."""
    ib, ob = buffers[ov.inp], buffers[ov.out]
    last_read, first_write = ov.share.times()
    if len(last_read) != ib.size or len(first_write) != ob.size:
        raise PlanError(f"{ob.name} over {ib.name}: the contract covers {len(first_write)} and {len(last_read)} bytes, "
                        f"the buffers have {ob.size} and {ib.size}")
    io, oo = offsets[ov.inp], offsets[ov.out]
    lo, hi = max(io, oo), min(io + ib.size, oo + ob.size)
    bad = np.nonzero(first_write[lo - oo:hi - oo] < last_read[lo - io:hi - io])[0]
    if len(bad):
        at = lo + int(bad[0])
        raise PlanError(f"{ob.name} (offset {oo}) lies over {ib.name} (offset {io}): its byte {at - oo} is written "
                        f"before byte {at - io} of {ib.name} is read for the last time (overlap contract: {ov.share.why})")
