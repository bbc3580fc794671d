"""Runs `slmc` command lines in forked children and judges how each one ended.

The parent imports slmc once; each case forks, so a case costs milliseconds of start-up instead of a
Python interpreter's second. The child gets an address-space cap (a runaway allocation fails inside it
instead of taking the machine), its own stdout/stderr files, and a wall-clock limit enforced by the
parent. A case passes when it exits 0 with a complete output, or exits 2 with exactly one line on
stderr and nothing written where it was told to write; anything else (a traceback, exit 1 or 3, a
signal, a time-out) is a finding.
"""

from __future__ import annotations

import os
import resource
import signal
import sys
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Case:
    family: str
    seed: int
    argv: tuple[str, ...]
    workdir: Path                     # the case's own folder: its inputs, cwd of the child
    out: Path | None = None           # where the command writes; must not appear when it fails
    expect_ok: bool | None = None     # None: either ending is fine; True/False: the generator knows
    check_ok: Callable[[Path], str | None] | None = field(default=None, compare=False)  # -> problem or None


@dataclass(frozen=True)
class Outcome:
    case: Case
    code: int                # exit code; -N for a signal; 124 for a time-out
    stdout: str
    stderr: str
    seconds: float
    peak_rss_kib: int
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems

    def describe(self) -> str:
        last = (self.stderr.strip().splitlines() or [""])[-1][:300]
        return (f"[{self.case.family} seed {self.case.seed}] exit {self.code}: {'; '.join(self.problems)}\n"
                f"  slmc {' '.join(self.case.argv)}\n  stderr: {last}")


def _vm_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024
    return 0


def _child(case: Case, cap_bytes: int) -> None:
    code = 1
    try:
        resource.setrlimit(resource.RLIMIT_AS, (cap_bytes, cap_bytes))
        for fd, name in ((1, "stdout"), (2, "stderr")):
            f = os.open(case.workdir / f".{name}", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.dup2(f, fd)
            os.close(f)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        # the parent's sys.stdout/stderr may be a test runner's capture objects, not fds 1 and 2
        sys.stdout = open(1, "w", closefd=False)
        sys.stderr = open(2, "w", closefd=False)
        os.chdir(case.workdir)
        sys.argv = ["slmc", *case.argv]
        import slmc.cli

        try:
            slmc.cli.main()
            code = 0
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        except BaseException:  # noqa: BLE001 - a finding: the harness reports it
            traceback.print_exc()
            code = 1
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(code)


def _judge(case: Case, code: int, out: str, err: str) -> tuple[str, ...]:
    problems: list[str] = []
    if code == 124:
        return ("timed out",)
    if code not in (0, 2):
        problems.append(f"exit code {code}")
    if "Traceback" in err or "Traceback" in out:
        problems.append("traceback printed")
    if code == 2:
        lines = [ln for ln in err.splitlines() if ln.strip()]
        if len(lines) != 1:
            problems.append(f"{len(lines)} lines on stderr, not one")
        if case.out is not None:
            if case.out.exists() or case.out.is_symlink():
                problems.append(f"output {case.out.name} written although the command failed")
            parent = case.out.parent
            if parent.is_dir() and any(p.name.startswith(f".{case.out.name}.") for p in parent.iterdir()):
                problems.append("temporary folder left beside the output")
        if case.expect_ok:
            problems.append("refused a valid input: " + (lines[0][:200] if lines else ""))
    if code == 0:
        if case.expect_ok is False:
            problems.append("accepted an input that must be refused")
        if case.check_ok is not None:
            bad = case.check_ok(case.workdir)
            if bad:
                problems.append(bad)
    return tuple(problems)


def run_cases(cases: Iterable[Case], jobs: int = 2, timeout_s: float = 60.0, cap_gib: float = 4.0,
              on_done: Callable[[Outcome], None] = lambda o: None) -> Iterator[Outcome]:
    """Runs the cases `jobs` at a time; yields each outcome as it ends."""
    import slmc.cli  # noqa: F401 - imported once here, inherited by every child

    cap = _vm_bytes() + int(cap_gib * (1 << 30))
    pending = iter(cases)
    running: dict[int, tuple[Case, float]] = {}
    while True:
        while len(running) < jobs:
            case = next(pending, None)
            if case is None:
                break
            case.workdir.mkdir(parents=True, exist_ok=True)
            pid = os.fork()
            if pid == 0:
                _child(case, cap)
            running[pid] = (case, time.monotonic())
        if not running:
            return
        time.sleep(0.005)
        for pid, (case, t0) in list(running.items()):
            done, status, usage = os.wait4(pid, os.WNOHANG)
            timed_out = False
            if done == 0:
                if time.monotonic() - t0 < timeout_s:
                    continue
                os.kill(pid, signal.SIGKILL)
                _, status, usage = os.wait4(pid, 0)
                timed_out = True
            del running[pid]
            code = 124 if timed_out else (os.waitstatus_to_exitcode(status))
            out = (case.workdir / ".stdout").read_text(errors="replace")
            err = (case.workdir / ".stderr").read_text(errors="replace")
            o = Outcome(case, code, out, err, time.monotonic() - t0, usage.ru_maxrss, _judge(case, code, out, err))
            on_done(o)
            yield o
