"""The event lines a generated program prints (main_llm.c): `T <id>` per generated token,
`S <key> <value>` statistics at the end, `O <mV> <kHz>` per operating-point transition of a
DVFS-scheduled build (slmc_hal_log.c, at the end), `E <message>` before a non-zero exit. Everything else is
kept, since on an emulator it may be a fault's register dump."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable


@dataclass
class RunResult:
    ids: list[int] = field(default_factory=list)
    stats: dict[str, float] = field(default_factory=dict)
    exit_code: int = 0
    opps: list[tuple[int, int]] = field(default_factory=list)
    other: list[str] = field(default_factory=list)   # the lines that are no event above (main_batch.c's events)


class EventParser:
    def __init__(self, on_token: Callable[[int], None] = lambda t: None) -> None:
        self.on_token = on_token
        self.ids: list[int] = []
        self.stats: dict[str, float] = {}
        self.opps: list[tuple[int, int]] = []
        self.error: str | None = None
        self.other: list[str] = []
        self._partial = ""

    def line(self, line: str) -> None:
        parts = line.split()
        if len(parts) == 2 and parts[0] == "T" and parts[1].lstrip("-").isdigit():
            self.ids.append(int(parts[1]))
            self.on_token(int(parts[1]))
        elif len(parts) == 3 and parts[0] == "S":
            try:
                self.stats[parts[1]] = float(parts[2])
            except ValueError:
                self.other.append(line.rstrip("\n"))
        elif len(parts) == 3 and parts[0] == "O" and parts[1].isdigit() and parts[2].isdigit():
            self.opps.append((int(parts[1]), int(parts[2])))
        elif line.startswith("E "):
            self.error = self.error or line[2:].strip()
        elif line.strip():
            self.other.append(line.rstrip("\n"))

    def text(self, chunk: str) -> None:
        """Feeds output that arrives in pieces (a character or a buffer at a time)."""
        self._partial += chunk
        *lines, self._partial = self._partial.split("\n")
        for ln in lines:
            self.line(ln + "\n")

    def flush(self) -> None:
        if self._partial:
            self.line(self._partial)
            self._partial = ""

    def result(self, exit_code: int) -> RunResult:
        self.flush()
        return RunResult(list(self.ids), dict(self.stats), exit_code, list(self.opps), list(self.other))
