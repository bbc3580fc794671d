"""The independent checker every plan passes before code is emitted."""

from __future__ import annotations

from slmc.plan.lifetimes import Buffer
from slmc.plan.memory import Placement


class PlanError(AssertionError):
    pass


def check(buffers: list[Buffer], placement: Placement) -> None:
    """Alignment, bounds, and no two buffers live at the same time share a byte."""
    if len(placement.offsets) != len(buffers):
        raise PlanError("placement does not cover every buffer")
    for b, off in zip(buffers, placement.offsets):
        if off < 0 or off % b.align:
            raise PlanError(f"{b.name}: offset {off} is negative or not aligned to {b.align}")
        if off + b.size > placement.size:
            raise PlanError(f"{b.name}: [{off}, {off + b.size}) overruns the arena of {placement.size} bytes")
    idx = sorted(range(len(buffers)), key=lambda i: buffers[i].first)
    for a_pos, i in enumerate(idx):
        a, ao = buffers[i], placement.offsets[i]
        for j in idx[a_pos + 1:]:
            b, bo = buffers[j], placement.offsets[j]
            if b.first > a.last:
                break
            if ao < bo + b.size and bo < ao + a.size and a.size and b.size:
                raise PlanError(f"{a.name} [{ao}, {ao + a.size}) and {b.name} [{bo}, {bo + b.size}) "
                                f"overlap while both are live (steps {max(a.first, b.first)}..{min(a.last, b.last)})")
