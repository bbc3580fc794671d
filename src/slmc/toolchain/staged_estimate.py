"""The ESTIMATE of a DMA-staged build (codegen/stage_plan.py): the flash reads overlap the compute.

A decode step is replayed on the operators' estimated cycles per token (exact instruction counts per operator,
the cycle model on the run's mix; for a multi-core build, each split operator's critical path): copies 0 and 1
are issued when the first operator starts, copy k + 2 when product k has returned; the flash serves one copy
at a time at the target's read rate, in order (a copy starts when it is issued and the one before it is done);
product k starts when the cores reach it and copy k is done. So a wait stalls only when a copy takes longer
than the work issued since it started. The bytes a step still reads in place (a table's row: RoPE's cos/sin)
are added after the compute, as in the unstaged estimate. Per-operator cycles are means over the run's
tokens (attention grows with the position): the stalls of single tokens are not seen, a bound the test
of the schedule (test_weight_staging.py) checks against max(compute, flash).
"""

from __future__ import annotations


def replay(op_cycles: list[tuple[str, float]], prologue_cycles: float, staging: dict, clock_hz: float,
           read_bytes_per_s: float) -> tuple[float, float]:
    """(seconds of a step's compute and waits, seconds the cores waited for copies)."""
    prods = staging["products"]
    index = {p["node"]: k for k, p in enumerate(prods)}
    dur = [p["bytes"] / read_bytes_per_s for p in prods]
    issue: dict[int, float] = {}
    end: dict[int, float] = {}

    def issued(k: int, at: float) -> None:
        if k < len(prods):
            issue[k] = at
            end[k] = max(at, end.get(k - 1, 0.0)) + dur[k]

    t = prologue_cycles / clock_hz
    issued(0, t)
    issued(1, t)
    stall = 0.0
    for name, cycles in op_cycles:
        k = index.get(name)
        if k is not None and k in end:
            if end[k] > t:
                stall += end[k] - t
                t = end[k]
        t += cycles / clock_hz
        if k is not None:
            issued(k + 2, t)
    return t, stall


def staged_estimate(op_cycles: list[tuple[str, float]], prologue_cycles: float, staging: dict, clock_hz: float,
                    read_bytes_per_s: float, in_place_bytes: float) -> dict:
    """The estimate's fields for a staged build: seconds per token = the replay + the in-place reads."""
    seconds, stall = replay(op_cycles, prologue_cycles, staging, clock_hz, read_bytes_per_s)
    compute = (prologue_cycles + sum(c for _, c in op_cycles)) / clock_hz
    in_place = in_place_bytes / read_bytes_per_s
    return dict(seconds=seconds + in_place, stall_seconds=stall, compute_seconds=compute,
                staged_flash_seconds=staging["bytes_per_step"] / read_bytes_per_s, in_place_flash_seconds=in_place,
                basis=(f"the {staging['bytes_per_step']:,} B of {len(staging['products'])} products' matrices DMA-staged "
                       f"one product ahead ({read_bytes_per_s / 1e6:g} MB/s, overlapped with the operators between a "
                       f"copy's start and its wait, replayed on the mean cycles per operator: waits "
                       f"{1e3 * stall:.3f} ms a token), plus {in_place_bytes:,.0f} B read in place after the compute"))
