"""A batched build's run (main_batch.c, slmc compile --batch B): the requests file it reads, and its event lines
turned into one record per sequence and the schedule (A admitted, R rows of a step, G generated, D done,
X refused, S statistics)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from slmc.toolchain.events import RunResult


@dataclass
class Sequence:
    prompt: list[int]
    ids: list[int] = field(default_factory=list)       # generated, in order
    slot: int | None = None
    admitted_step: int | None = None
    done_step: int | None = None
    positions: int = 0
    seconds: float | None = None                        # from the start of the run to its end (host)
    error: str | None = None


@dataclass(frozen=True)
class BatchRun:
    sequences: list[Sequence]
    schedule: list[tuple[int, int, int, int]]           # (step, sequence, first position, rows)
    stats: dict[str, float]

    @property
    def steps(self) -> int:
        return int(self.stats.get("steps", 0))

    @property
    def rows(self) -> int:
        return int(self.stats.get("rows", 0))

    @property
    def generated(self) -> int:
        return int(self.stats.get("generated", 0))


def write_requests(path: Path, prompts: list[list[int]]) -> None:
    """One line per request: its prompt ids, comma-separated (main_batch.c's -f)."""
    path.write_text("".join(",".join(map(str, p)) + "\n" for p in prompts))


def parse(res: RunResult, prompts: list[list[int]]) -> BatchRun:
    seqs = [Sequence(list(p)) for p in prompts]
    schedule = []
    for line in res.other:
        parts = line.split(maxsplit=2 if line.startswith("X ") else -1)
        if not parts or not all(x.lstrip("-").replace(".", "", 1).isdigit() for x in parts[1:2]):
            continue
        kind, k = parts[0], int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else -1
        if kind == "R" and len(parts) == 5:
            schedule.append(tuple(int(x) for x in parts[1:]))
            continue
        if not 0 <= k < len(seqs):
            continue
        s = seqs[k]
        if kind == "A" and len(parts) == 4:
            s.slot, s.admitted_step = int(parts[2]), int(parts[3])
        elif kind == "G" and len(parts) == 3:
            s.ids.append(int(parts[2]))
        elif kind == "D" and len(parts) == 6:
            s.positions, s.done_step, s.seconds = int(parts[2]), int(parts[4]), float(parts[5])
        elif kind == "X" and len(parts) == 3:
            s.error = parts[2]
    return BatchRun(seqs, schedule, dict(res.stats))  # type: ignore[arg-type]
