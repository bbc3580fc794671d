"""Timing helpers: one process run with its wall and CPU time, and the median/min/max summary."""

from __future__ import annotations

import resource
import statistics
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Proc:
    stdout: str
    stderr: str
    wall_s: float   # fork to exit, seen from here
    cpu_s: float    # user + system time of the child


def run_proc(cmd: list[str], cwd: Path | None = None) -> Proc:
    """Run one child to completion. Its CPU time is the growth of RUSAGE_CHILDREN, so only one child at a time."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))} exited with {r.returncode}: {(r.stderr or r.stdout)[-400:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Proc(r.stdout, r.stderr, wall, cpu)


def stats(values: list[float]) -> dict:
    """Median, min and max of the runs, and the runs themselves (in round order)."""
    v = [float(x) for x in values if x is not None]
    if not v:
        return {"median": None, "min": None, "max": None, "runs": []}
    return {"median": statistics.median(v), "min": min(v), "max": max(v), "runs": v}


def loadavg() -> list[float]:
    try:
        return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]
    except OSError:
        return []
