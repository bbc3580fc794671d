"""Optimal static allocation with OR-Tools CP-SAT: buffers are rectangles in time x address that may
not overlap; minimise the arena (the highest end address).

Same signature as the greedy planner (DESIGN.md rule 4). The greedy plan is given as a hint and its
size as an upper bound, so the result is never worse; the live-bytes peak is a lower bound, so when
greedy reaches it the solver is not even started. Fixed seed and a deterministic time limit make
the result the same on every machine.
"""

from __future__ import annotations

from dataclasses import dataclass

from slmc.plan.lifetimes import Buffer, live_peak
from slmc.plan.memory import Placement, greedy_by_size


@dataclass(frozen=True)
class SolveInfo:
    optimal: bool          # proven optimal (or equal to the lower bound)
    lower_bound: int       # best bound known: the live-bytes peak, or the solver's, if higher
    seconds: float


def cpsat_plan(buffers: list[Buffer], deterministic_time: float = 5.0, seed: int = 0) -> tuple[Placement, SolveInfo]:
    from ortools.sat.python import cp_model

    steps = max((b.last for b in buffers), default=0) + 1
    bound = live_peak(buffers, steps)
    greedy = greedy_by_size(buffers)
    if greedy.size <= bound or not buffers:
        return greedy, SolveInfo(True, bound, 0.0)
    m = cp_model.CpModel()
    ub = greedy.size
    ends, xs, ys, offs = [], [], [], []
    for i, b in enumerate(buffers):
        k = m.NewIntVar(0, (ub - b.size) // b.align, f"k{i}")
        off = m.NewIntVar(0, ub - b.size, f"o{i}")
        m.Add(off == k * b.align)
        end = m.NewIntVar(b.size, ub, f"e{i}")
        m.Add(end == off + b.size)
        xs.append(m.NewFixedSizeIntervalVar(b.first, b.last - b.first + 1, f"t{i}"))
        ys.append(m.NewIntervalVar(off, b.size, end, f"a{i}"))
        ends.append(end)
        offs.append(off)
        m.AddHint(off, greedy.offsets[i])
    peak = m.NewIntVar(bound, ub, "peak")
    m.AddMaxEquality(peak, ends)
    m.AddNoOverlap2D(xs, ys)
    m.Minimize(peak)
    solver = cp_model.CpSolver()
    solver.parameters.random_seed = seed
    solver.parameters.num_workers = 1
    solver.parameters.max_deterministic_time = deterministic_time
    status = solver.Solve(m)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE) or solver.Value(peak) >= greedy.size:
        lb = max(bound, int(solver.BestObjectiveBound())) if status != cp_model.UNKNOWN else bound
        return greedy, SolveInfo(status == cp_model.OPTIMAL, lb, solver.WallTime())
    placement = Placement(tuple(solver.Value(o) for o in offs), solver.Value(peak), "cpsat")
    return placement, SolveInfo(status == cp_model.OPTIMAL, max(bound, int(solver.BestObjectiveBound())),
                                solver.WallTime())
