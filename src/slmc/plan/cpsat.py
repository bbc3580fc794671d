"""Optimal static allocation with OR-Tools CP-SAT: buffers are rectangles in time x address that may
not overlap; minimise the arena (the highest end address).

Same signature as the greedy planner (DESIGN.md rule 4). The greedy plan is given as a hint and its
size as an upper bound, so the result is never worse; the live-bytes peak is a lower bound, so when
greedy reaches it the solver is not even started. Fixed seed and a deterministic time limit make
the result the same on every machine.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from slmc.plan.lifetimes import Buffer, Overlap, live_peak, shared_peak
from slmc.plan.memory import Placement, greedy_by_size


@dataclass(frozen=True)
class SolveInfo:
    optimal: bool          # proven optimal (or equal to the lower bound)
    lower_bound: int       # best bound known: the live-bytes peak, or the solver's, if higher
    seconds: float


def cpsat_plan(buffers: list[Buffer], deterministic_time: float = 5.0, seed: int = 0,
               overlaps: Sequence[Overlap] = (), ties: Sequence[tuple[int, int]] = ()) -> tuple[Placement, SolveInfo]:
    """With `overlaps`, a related pair (the node at `step` reads inp for the last time and writes out) is
    taken out of the no-overlap constraint by splitting that step in two on the time axis (inp ends in its
    first half, out starts in its second) and gets its own: out - inp in [lo, hi], or disjoint. `ties`: pairs
    of buffers that get one offset (plan/layers.py)."""
    from ortools.sat.python import cp_model

    steps = max((b.last for b in buffers), default=0) + 1
    bound = shared_peak(buffers, steps, list(overlaps)) if overlaps else live_peak(buffers, steps)
    greedy = greedy_by_size(buffers, overlaps, ties)
    if greedy.size <= bound or not buffers:
        return greedy, SolveInfo(True, bound, 0.0)
    m = cp_model.CpModel()
    ub = greedy.size
    ends, xs, ys, offs = [], [], [], []
    ends_early = {ov.inp for ov in overlaps}      # their last step's first half only
    starts_late = {ov.out for ov in overlaps}     # their first step's second half only
    for i, b in enumerate(buffers):
        k = m.NewIntVar(0, (ub - b.size) // b.align, f"k{i}")
        off = m.NewIntVar(0, ub - b.size, f"o{i}")
        m.Add(off == k * b.align)
        end = m.NewIntVar(b.size, ub, f"e{i}")
        m.Add(end == off + b.size)
        t0, t1 = 2 * b.first + (i in starts_late), 2 * b.last + 2 - (i in ends_early)
        xs.append(m.NewFixedSizeIntervalVar(t0, t1 - t0, f"t{i}"))
        ys.append(m.NewIntervalVar(off, b.size, end, f"a{i}"))
        ends.append(end)
        offs.append(off)
        m.AddHint(off, greedy.offsets[i])
    peak = m.NewIntVar(bound, ub, "peak")
    m.AddMaxEquality(peak, ends)
    m.AddNoOverlap2D(xs, ys)
    for a, b in ties:
        m.Add(offs[a] == offs[b])
    _split_step_pairs(m, buffers, offs, overlaps, ends_early, starts_late)
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


def _split_step_pairs(m, buffers: list[Buffer], offs: list, overlaps: Sequence[Overlap], ends_early: set[int],
                      starts_late: set[int]) -> None:
    """The pairs the split steps took out of the no-overlap constraint: related ones within their range
    or disjoint, the others disjoint."""
    rel = {(ov.out, ov.inp): ov for ov in overlaps}

    def disjoint(a: int, b: int, lit=None) -> None:
        x = m.NewBoolVar(f"below{a}_{b}")
        when = [] if lit is None else [lit]
        m.Add(offs[a] + buffers[a].size <= offs[b]).OnlyEnforceIf([x, *when])
        m.Add(offs[b] + buffers[b].size <= offs[a]).OnlyEnforceIf([x.Not(), *when])

    for o in starts_late:
        for i in ends_early:
            if buffers[i].last != buffers[o].first:
                continue
            ov = rel.get((o, i))
            if ov is None:
                disjoint(o, i)
                continue
            shared = m.NewBoolVar(f"share{o}_{i}")
            m.Add(offs[o] - offs[i] >= ov.lo).OnlyEnforceIf(shared)
            m.Add(offs[o] - offs[i] <= ov.hi).OnlyEnforceIf(shared)
            disjoint(o, i, shared.Not())
