"""Run a partitioned build (`slmc compile --chips N`) on the host: build every chip's project, start
one process per chip, connected by Unix domain sockets (kernels/c/link_runtime.c) in a fresh
directory, and collect chip 0's tokens and every chip's bytes sent per link."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from slmc.errors import SlmcError
from slmc.toolchain.build import build
from slmc.toolchain.events import EventParser, RunResult
from slmc.toolchain.run import run_events


@dataclass
class ChipsResult:
    run: RunResult                                    # chip 0's tokens and statistics
    sent: dict[tuple[int, int], int] = field(default_factory=dict)  # (from, to) -> bytes over the whole run

    def links(self, positions: int) -> list[dict]:
        return [dict(src=s, dst=d, bytes=b, bytes_per_token=b / positions if positions else None)
                for (s, d), b in sorted(self.sent.items())]

    def summary(self, manifest: dict) -> dict:
        """What `slmc run --json` adds for a partitioned build: the measured bytes per link and per
        token (positions processed, prompt included) beside the plan's count for a decode step."""
        positions = int(self.run.stats.get("positions", 0))
        part, links = manifest["partition"], self.links(positions)
        return dict(n_chips=manifest["n_chips"], fan_in=manifest["fan_in"], syncs_per_block=part["syncs_per_block"],
                    syncs_per_step=part["syncs_per_step"], links=links,
                    bytes_per_link_per_token_max=max((x["bytes_per_token"] or 0 for x in links), default=0),
                    planned_link_bytes_per_decode_step=part["link_bytes_per_decode_step"])


def _sent(chip: int, stats: dict[str, float]) -> dict[tuple[int, int], int]:
    return {(chip, int(k[len("sent_to_"):])): int(v) for k, v in stats.items() if k.startswith("sent_to_")}


def run_chips(project: Path, manifest: dict, args: list[str], on_token: Callable[[int], None] = lambda t: None,
              timeout: float = 600.0) -> ChipsResult:
    project = Path(project)
    dirs = [project / d for d in manifest["chips"]]
    binaries = [build(d).resolve() for d in dirs]
    # socket paths must stay under ~100 characters: a short directory of our own under /tmp
    links = Path(tempfile.mkdtemp(prefix="slmc-link-", dir="/tmp" if Path("/tmp").is_dir() else None))
    followers: list[subprocess.Popen] = []
    try:
        for b in binaries[1:]:
            followers.append(subprocess.Popen([str(b), "-L", str(links)], stdout=subprocess.PIPE,
                                              stderr=subprocess.PIPE, text=True))
        try:
            res = run_events([str(binaries[0]), *args, "-L", str(links)], on_token)
        except SlmcError as e:
            raise SlmcError(f"chip 0: {e.args[0] if e.args else e}" + _follower_errors(followers),
                            "this is a bug in slmc; please report it") from None
        out = ChipsResult(res, _sent(0, res.stats))
        for i, p in enumerate(followers, start=1):
            try:
                stdout, stderr = p.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                raise SlmcError(f"chip {i} did not finish after chip 0 closed its links", "this is a bug in slmc") from None
            parser = EventParser()
            for line in stdout.splitlines():
                parser.line(line + "\n")
            if p.returncode != 0:
                raise SlmcError(f"chip {i} exited with code {p.returncode}: {stderr.strip()[-300:]}",
                                "this is a bug in slmc; please report it")
            out.sent.update(_sent(i, parser.stats))
        return out
    finally:
        for p in followers:
            if p.poll() is None:
                p.kill()
                p.wait()
        shutil.rmtree(links, ignore_errors=True)


def _follower_errors(followers: list[subprocess.Popen]) -> str:
    msgs = []
    for i, p in enumerate(followers, start=1):
        if p.poll() is not None and p.returncode != 0 and p.stderr is not None:
            msgs.append(f"chip {i}: {p.stderr.read().strip()[-200:]}")
    return ("; " + "; ".join(msgs)) if msgs else ""
