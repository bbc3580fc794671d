"""The frozen result of planning (DESIGN.md rule 2: planners never mutate the graph)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from slmc.ir import Graph
from slmc.plan.check import check
from slmc.plan.lifetimes import Buffer, buffers_for, live_peak
from slmc.plan.cpsat import cpsat_plan


@dataclass(frozen=True)
class MemoryPlan:
    buffers: tuple[Buffer, ...]
    offsets: tuple[int, ...]
    arena_bytes: int
    lower_bound_bytes: int
    kv_cache_bytes: int
    planner: str
    optimal: bool           # proven: arena == the best lower bound, or CP-SAT proved optimality
    best_bound_bytes: int   # the tightest lower bound known (>= lower_bound_bytes)
    seconds: float = 0.0    # planning time (greedy, CP-SAT when it runs, and the checker)

    def offset_of(self, name: str) -> int:
        for b, off in zip(self.buffers, self.offsets):
            if b.name == name:
                return off
        raise KeyError(name)

    def as_rows(self) -> list[dict[str, int | str]]:
        return [dict(name=b.name, offset=o, size=b.size, first=b.first, last=b.last)
                for b, o in zip(self.buffers, self.offsets)]


def plan_memory(graphs: list[Graph], scratch: dict[int, int]) -> MemoryPlan:
    t0 = time.perf_counter()
    buffers, steps = buffers_for(graphs, scratch)
    placement, info = cpsat_plan(buffers)
    check(buffers, placement)
    states = {v.name for g in graphs for v in g.states()}
    return MemoryPlan(tuple(buffers), placement.offsets, placement.size, live_peak(buffers, steps),
                      sum(b.size for b in buffers if b.name in states), placement.planner, info.optimal,
                      info.lower_bound, time.perf_counter() - t0)
