"""One sweep point, wherever Ray runs it: the model's bytes written into a temp folder of its own, then
`compile_model` and the run `slmc run DIR --json` does (exact counts on an emulated target), then the
figures (results.py). A bad combination ends in its one-line error, never an exception."""

from __future__ import annotations

import hashlib
import json
import shutil
import signal
import socket
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterator

from slmc.errors import SlmcError
from slmc.sweep.spec import Point

MAX_MODEL_BYTES = 2 << 30   # shipped to every worker through Ray's object store


@dataclass(frozen=True)
class ModelBlob:
    """A model's files, shipped to the workers (a cluster's nodes need not share a file system).
    `files`: (path relative to the model's folder, bytes); a single-file model is one entry, its name."""
    name: str
    folder: bool
    digest: str
    files: tuple[tuple[str, bytes], ...]


def load_blob(path: str) -> ModelBlob:
    p = Path(path)
    entries = [(p.name, p)] if p.is_file() else sorted(
        (f.relative_to(p).as_posix(), f) for f in p.rglob("*") if f.is_file() and not f.is_symlink())
    total = sum(f.stat().st_size for _, f in entries)
    if total > MAX_MODEL_BYTES:
        raise SlmcError(f"model '{path}' is {total:,} B", f"a sweep ships models of up to {MAX_MODEL_BYTES:,} B")
    h = hashlib.sha256()
    files = []
    for rel, f in entries:
        data = f.read_bytes()
        h.update(rel.encode() + b"\0" + len(data).to_bytes(8, "little") + data)
        files.append((rel, data))
    return ModelBlob(p.name, p.is_dir(), h.hexdigest(), tuple(files))


def materialize(blob: ModelBlob, root: Path) -> Path:
    base = root / "model"
    for rel, data in blob.files:
        dest = (base / blob.name / rel) if blob.folder else base / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(data)
    return base / blob.name


@dataclass(frozen=True)
class PointResult:
    status: str                                   # "ok" or the one-line error
    figures: dict[str, object] = field(default_factory=dict)
    compile_s: float = 0.0
    run_s: float = 0.0
    node: str = ""
    cacheable: bool = True                        # False: a time-out or internal error, worth another try


class PointTimeout(Exception):
    pass


@contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Raise PointTimeout in this thread after `seconds` (SIGALRM: Ray runs tasks on the worker's main
    thread; elsewhere no timer is set and the engine's own deadline applies). A subprocess running when it
    fires is killed by subprocess.run's cleanup."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def fire(signum, frame):
        raise PointTimeout()

    old = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def run_json(project: Path, steps: int) -> dict:
    """What `slmc run PROJECT --steps N --json` prints (greedy, no prompt), as a dict."""
    from slmc.targets import get_target
    from slmc.toolchain.build import build
    from slmc.toolchain.run import llm_args, run_program

    chips = (project / "manifest.json").is_file()
    rep = json.loads((project / ("manifest.json" if chips else "report.json")).read_text())
    if "config" not in rep:
        raise SlmcError("the model compiled to a graph, not a language model", "sweep language models")
    steps = min(steps, rep["config"]["seq_len"])
    if isinstance(rep.get("batch"), dict):
        return run_batch_json(project, rep, steps)
    target = get_target(rep["target"])
    if "cluster" in rep:
        from slmc.toolchain.harts import run_target

        target = run_target(target, rep, counting=True)
    args = llm_args(steps, 0.0, 0.9, 42, None, None)
    counts: dict = {}
    if chips:
        from slmc.toolchain.multichip import run_chips

        multi = run_chips(project, rep, args)
        res, counts = multi.run, multi.summary(rep)
    elif target.emulated:
        from slmc.toolchain.profile import count_run

        res, counts = count_run(project, target, rep, args, lambda t: None)
    else:
        res = run_program(target, build(project), args)
    secs = res.stats.get("seconds")
    tps = res.stats.get("positions", 0) / secs if secs else None
    return {**counts, "ids": res.ids, "positions": int(res.stats.get("positions", 0)), "tokens_per_s": tps}


def run_batch_json(project: Path, rep: dict, steps: int) -> dict:
    """A batched build (--batch B) run as `slmc run --prompt-ids-file` with B requests from BOS, greedy:
    aggregate tokens/s and, on an emulated target, exact instructions and weight bytes per generated token."""
    from slmc.cli_batch import execute

    n = int(rep["batch"]["slots"])
    run, counts = execute(project, rep, [[1]] * n, steps, 0.0, 0.9, 42, count=True)
    failed = [s.error for s in run.sequences if s.error]
    if failed:
        raise SlmcError(f"a batched sequence failed: {failed[0]}", "check the point's options")
    secs = run.stats.get("seconds")
    return {**counts, "ids": run.sequences[0].ids, "positions": run.sequences[0].positions, "sequences": n,
            "tokens_per_s": run.rows / secs if secs else None}


def run_point(point: Point, blob: ModelBlob, timeout_s: float) -> PointResult:
    """Compile and run one point in a temp folder of its own (removed afterwards)."""
    from slmc.driver import compile_model
    from slmc.sweep.results import figures

    node = socket.gethostname()
    tmp = Path(tempfile.mkdtemp(prefix="slmc-sweep-"))
    t0 = time.perf_counter()
    t1 = t0
    try:
        with deadline(timeout_s):
            model = materialize(blob, tmp)
            out = tmp / "out"
            opts, schedule = point.compile_options(model, out), None
            budget = point.value("dvfs_latency_ms")
            if budget is not None:
                from slmc.codegen.pico import schedule_steps
                from slmc.sweep.power import dvfs_schedule

                schedule = dvfs_schedule(model, point.target, opts.numerics, point.steps, float(budget))
                opts = replace(opts, dvfs=schedule_steps(schedule))
            compile_model(opts)
            t1 = time.perf_counter()
            chips = (out / "manifest.json").is_file()
            rep = json.loads((out / ("manifest.json" if chips else "report.json")).read_text())
            run = run_json(out, point.steps)
        t2 = time.perf_counter()
        opp = point.value("opp")
        return PointResult("ok", figures(rep, run, point.target, None if opp is None else str(opp), schedule),
                           t1 - t0, t2 - t1, node)
    except SlmcError as e:
        return PointResult(" ".join(str(e).split()), {}, t1 - t0, 0.0, node)
    except PointTimeout:
        return PointResult(f"timed out after {timeout_s:g} s", {}, t1 - t0, 0.0, node, cacheable=False)
    except Exception as e:  # noqa: BLE001 - one point's bug must not end the sweep; recorded, not cached
        msg = " ".join(str(e).split())[:300]
        return PointResult(f"internal error ({type(e).__name__}: {msg})", {}, t1 - t0, 0.0, node, cacheable=False)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

