"""The frozen result of planning (DESIGN.md rule 2: planners never mutate the graph)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import cached_property

from slmc.ir import Graph
from slmc.plan.check import check
from slmc.plan.cpsat import cpsat_plan
from slmc.plan.layers import Fold
from slmc.plan.lifetimes import Buffer, Overlap, buffers_for, live_peak, overlaps_for, shared_peak
from slmc.plan.memory import Placement


@dataclass(frozen=True)
class MemoryPlan:
    buffers: tuple[Buffer, ...]
    offsets: tuple[int, ...]
    arena_bytes: int
    lower_bound_bytes: int  # conventional: the peak of whole live buffers
    kv_cache_bytes: int
    planner: str
    optimal: bool           # proven: arena == the best lower bound, or CP-SAT proved optimality
    best_bound_bytes: int   # the tightest lower bound known (>= shared_lower_bound_bytes)
    seconds: float = 0.0    # planning time (greedy, CP-SAT when it runs, and the checker)
    overlaps: tuple[Overlap, ...] = ()   # outputs planned over consumed inputs (kernels/overlap.py)
    shared_lower_bound_bytes: int = 0    # the bound under the overlap contracts (== lower_bound_bytes without)

    @property
    def activation_arena_bytes(self) -> int:
        """The arena less the KV cache (live throughout, never shared); weights are not in the arena."""
        return self.arena_bytes - self.kv_cache_bytes

    @property
    def activation_lower_bound_bytes(self) -> int:
        return self.lower_bound_bytes - self.kv_cache_bytes

    def offset_of(self, name: str) -> int:
        off = self.offset_if(name)
        if off is None:
            raise KeyError(name)
        return off

    def offset_if(self, name: str) -> int | None:
        """The buffer's offset, None where the plan has no buffer of that name."""
        return self._by_name.get(name)

    @cached_property
    def _by_name(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for b, off in zip(self.buffers, self.offsets):
            out.setdefault(b.name, off)
        return out

    def shared_bytes(self, ov: Overlap) -> int:
        """Bytes the plan actually lets output and input of `ov` share (0 where it kept them apart)."""
        o, i = self.buffers[ov.out], self.buffers[ov.inp]
        oo, io = self.offsets[ov.out], self.offsets[ov.inp]
        return max(0, min(oo + o.size, io + i.size) - max(oo, io))

    def sharing_rows(self) -> list[dict]:
        """Each output planned over an input it consumes: how many bytes they share and why it is safe."""
        return [dict(output=self.buffers[ov.out].name, input=self.buffers[ov.inp].name, shared_bytes=self.shared_bytes(ov),
                     offset=self.offsets[ov.out] - self.offsets[ov.inp], allowed=[ov.lo, ov.hi], order=ov.share.why)
                for ov in self.overlaps if self.shared_bytes(ov)]

    def as_rows(self) -> list[dict[str, int | str]]:
        return [dict(name=b.name, offset=o, size=b.size, first=b.first, last=b.last)
                for b, o in zip(self.buffers, self.offsets)]


def plan_memory(graphs: list[Graph], scratch: dict[int, int], contracts: dict[int, tuple] | None = None) -> MemoryPlan:
    """`contracts`: id(node) -> the overlap contracts of its kernel (None or {}: no memory sharing).

    A decoder's repeated layers are planned once (plan/layers.py): the planner sees layer 0 only and every
    other layer takes its offsets, so model.c can run all layers with one loop body; the checker verifies
    the plan on the real time axis, every layer included, and that each layer's buffers lie where layer 0's do."""
    t0 = time.perf_counter()
    buffers, steps = buffers_for(graphs, scratch)
    overlaps = overlaps_for(graphs, buffers, contracts) if contracts else []
    fold = Fold(graphs, scratch)
    ties: list[tuple[int, int]] = []
    if fold:
        folded, _ = buffers_for(graphs, scratch, fold)
        f_overlaps = overlaps_for(graphs, folded, contracts, fold) if contracts else []
        f_place, info = cpsat_plan(folded, overlaps=f_overlaps, ties=fold.ties(folded))
        at = {b.name: off for b, off in zip(folded, f_place.offsets)}
        names = fold.unfold_names()
        placement = Placement(tuple(at[names.get(b.name, b.name)] for b in buffers), f_place.size, f_place.planner)
        ties = fold.real_ties(buffers)
    else:
        placement, info = cpsat_plan(buffers, overlaps=overlaps)
    check(buffers, placement, overlaps, ties)
    states = {v.name for g in graphs for v in g.states()}
    conventional = live_peak(buffers, steps)
    return MemoryPlan(tuple(buffers), placement.offsets, placement.size, conventional,
                      sum(b.size for b in buffers if b.name in states), placement.planner, info.optimal,
                      info.lower_bound, time.perf_counter() - t0, tuple(overlaps),
                      shared_peak(buffers, steps, overlaps) if overlaps else conventional)
