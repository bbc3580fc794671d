"""Run a built language-model program and read its event lines (T <id>, S <key> <value>):
on the host directly, on an emulated target under QEMU with semihosting (toolchain/qemu.py)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Callable

from slmc.errors import SlmcError
from slmc.targets import Target
from slmc.toolchain.events import EventParser, RunResult

__all__ = ["RunResult", "llm_args", "run_events", "run_program"]


def llm_args(steps: int, temperature: float, topp: float, seed: int, prompt_ids: list[int] | None,
             logits_path: Path | None) -> list[str]:
    args = ["-n", str(steps), "-t", repr(float(temperature)), "-p", repr(float(topp)), "-s", str(seed)]
    if prompt_ids:
        args += ["-i", ",".join(map(str, prompt_ids))]
    if logits_path is not None:
        args += ["-l", str(logits_path)]
    return args


def run_events(cmd: list[str], on_token: Callable[[int], None] = lambda t: None, cwd: Path | None = None) -> RunResult:
    """Runs a host program to its end; raises SlmcError on a non-zero exit code."""
    parser = EventParser(on_token)
    try:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd)
    except OSError as e:  # not executable, or (before the build lock) being linked by another run
        raise SlmcError(f"cannot start the program '{cmd[0]}' ({e.strerror})", "build the project again (`make` in it)") from None
    assert proc.stdout is not None
    for line in proc.stdout:
        parser.line(line)
    err = proc.stderr.read() if proc.stderr else ""
    for line in err.splitlines():
        parser.line(line + "\n")
    res = parser.result(proc.wait())
    if res.exit_code != 0:
        msg = parser.error or err.strip()[-300:]
        raise SlmcError(f"the generated program exited with code {res.exit_code}: {msg}", "check the run arguments")
    return res


def run_program(target: Target, program: Path, args: list[str], on_token: Callable[[int], None] = lambda t: None,
                timeout: float | None = None) -> RunResult:
    """Runs a built program on its target: the host binary itself, or the ELF under the target's emulator."""
    if target.emulator is None:
        return run_events([str(Path(program).resolve()), *args], on_token)
    from slmc.toolchain.qemu import run_qemu

    return run_qemu(target, Path(program), args, on_token, timeout)
