"""Run a built language-model program and read its event lines (T <id>, S <key> <value>)."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from slmc.errors import SlmcError


@dataclass
class RunResult:
    ids: list[int] = field(default_factory=list)
    stats: dict[str, float] = field(default_factory=dict)
    exit_code: int = 0


def llm_args(steps: int, temperature: float, topp: float, seed: int, prompt_ids: list[int] | None,
             logits_path: Path | None) -> list[str]:
    args = ["-n", str(steps), "-t", repr(float(temperature)), "-p", repr(float(topp)), "-s", str(seed)]
    if prompt_ids:
        args += ["-i", ",".join(map(str, prompt_ids))]
    if logits_path is not None:
        args += ["-l", str(logits_path)]
    return args


def run_events(cmd: list[str], on_token: Callable[[int], None] = lambda t: None, cwd: Path | None = None) -> RunResult:
    res = RunResult()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd)
    assert proc.stdout is not None
    for line in proc.stdout:
        parts = line.split()
        if len(parts) == 2 and parts[0] == "T":
            res.ids.append(int(parts[1]))
            on_token(int(parts[1]))
        elif len(parts) == 3 and parts[0] == "S":
            res.stats[parts[1]] = float(parts[2])
    err = proc.stderr.read() if proc.stderr else ""
    res.exit_code = proc.wait()
    if res.exit_code != 0:
        msg = next((ln[2:] for ln in err.splitlines() if ln.startswith("E ")), err.strip()[-300:])
        raise SlmcError(f"the generated program exited with code {res.exit_code}: {msg}", "check the run arguments")
    return res
