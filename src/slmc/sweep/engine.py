"""The sweep engine: Ray. By default `ray.init` starts an instance inside this process on this machine (no
set-up); `--address` or RAY_ADDRESS joins an existing cluster. Each point is one Ray task (one CPU)
with a temp folder of its own and a time-out; a failed point records its one-line error and the sweep
goes on; a task whose worker dies is run again by Ray (`retries`); a cached point is never submitted."""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol

from slmc.errors import SlmcError
from slmc.sweep.cache import Cache, point_key
from slmc.sweep.point import ModelBlob, PointResult, load_blob, run_point
from slmc.sweep.spec import Point, SweepSpec

GRACE_S = 60.0            # beyond a point's own time-outs, before the engine cancels its task
OBJECT_STORE_BYTES = 256 << 20


class Feed(Protocol):
    """Where points come from: the grid (all known up front) or a search (search.py, told each result)."""
    def next(self) -> tuple[int, Point] | None: ...
    def done(self, index: int, res: PointResult) -> None: ...


class GridFeed:
    def __init__(self, points: list[Point]) -> None:
        self.points, self.i = points, 0

    @property
    def total(self) -> int:
        return len(self.points)

    def next(self) -> tuple[int, Point] | None:
        if self.i >= len(self.points):
            return None
        self.i += 1
        return self.i - 1, self.points[self.i - 1]

    def done(self, index: int, res: PointResult) -> None:
        pass


@dataclass(frozen=True)
class Outcome:
    index: int
    point: Point
    key: str
    result: PointResult
    cached: bool
    seconds: float            # from submission to result (0 for a cached point)


@dataclass(frozen=True)
class Summary:
    points: int
    computed: int
    cached: int
    failed: int

    def to_json(self) -> dict:
        return dict(points=self.points, computed=self.computed, cached=self.cached, failed=self.failed)


def summarize(outcomes: list[Outcome]) -> Summary:
    return Summary(len(outcomes), sum(not o.cached for o in outcomes), sum(o.cached for o in outcomes),
                   sum(o.result.status != "ok" for o in outcomes))


def connect(address: str | None, workers: int | None) -> bool:
    """Joins the cluster at `address` (or RAY_ADDRESS), else starts Ray in this process with `workers`
    CPUs. Returns whether this call started Ray (and so must shut it down)."""
    import ray

    if ray.is_initialized():
        return False
    addr = address or os.environ.get("RAY_ADDRESS") or None
    quiet = dict(include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    try:
        if addr:
            ray.init(address=addr, **quiet)
        else:  # "local": a new instance, even where a `ray start` cluster runs on this machine
            ray.init(address="local", num_cpus=workers or os.cpu_count() or 1,
                     object_store_memory=OBJECT_STORE_BYTES, **quiet)
    except (ConnectionError, RuntimeError, ValueError) as e:
        where = f"the Ray cluster at {addr}" if addr else "a local Ray instance"
        raise SlmcError(f"cannot start or reach {where} ({' '.join(str(e).split())[:200]})",
                        "check --address / RAY_ADDRESS (`ray status` on the head node)") from None
    return True


def _task(point: Point, blob: ModelBlob, timeout_s: float) -> PointResult:
    return run_point(point, blob, timeout_s)


def _died(e: Exception, retries: int) -> PointResult:
    return PointResult(f"worker died ({type(e).__name__}; tried {retries + 1} times)", cacheable=False)


class _Ray:
    """Ray, connected at the first point the cache does not hold (a fully cached re-run never starts it)."""

    def __init__(self, spec: SweepSpec, blobs: dict[str, ModelBlob], address: str | None, workers: int | None):
        self.spec, self.blobs, self.address, self.workers = spec, blobs, address, workers
        self.up = self.started = False

    def start(self) -> None:
        import ray

        self.started = connect(self.address, self.workers)
        self.up = True
        self.refs = {m: ray.put(b) for m, b in self.blobs.items()}
        self.remote = ray.remote(_task).options(num_cpus=1, max_retries=self.spec.retries, retry_exceptions=False)
        self.capacity = max(1, int(ray.cluster_resources().get("CPU", 1)))

    def submit(self, p: Point):
        if not self.up:
            self.start()
        return self.remote.remote(p, self.refs[p.model], self.spec.timeout_s)

    def close(self) -> None:
        import ray

        if self.started:
            ray.shutdown()


def run_feed(feed: Feed, spec: SweepSpec, cache: Cache, engine: _Ray,
             on_result: Callable[[Outcome], None] = lambda o: None) -> list[Outcome]:
    """Every point of `feed` through the cache and Ray; outcomes in the feed's order."""
    limit = spec.timeout_s * (spec.retries + 1) + GRACE_S
    flying: dict = {}
    outcomes: list[Outcome] = []

    def finish(o: Outcome) -> None:
        outcomes.append(o)
        feed.done(o.index, o.result)
        on_result(o)

    exhausted = False
    while True:
        while not exhausted and (not engine.up or len(flying) < engine.capacity):
            nxt = feed.next()
            if nxt is None:
                exhausted = True
                break
            i, p = nxt
            key = point_key(p, engine.blobs[p.model].digest)
            hit = cache.get(key)
            if hit is not None:
                finish(Outcome(i, p, key, hit, True, 0.0))
                continue
            flying[engine.submit(p)] = (i, p, key, time.monotonic())
        if not flying:
            if exhausted:
                break
            continue
        _collect(flying, spec, cache, finish, limit)
    return sorted(outcomes, key=lambda o: o.index)


def _collect(flying: dict, spec: SweepSpec, cache: Cache, finish: Callable[[Outcome], None], limit: float) -> None:
    """Waits up to 2 s for a task; records what finished, and cancels a task past every time-out."""
    import ray
    from ray.exceptions import RayError

    ready, _ = ray.wait(list(flying), num_returns=1, timeout=2.0)
    for ref in ready:
        i, p, key, t0 = flying.pop(ref)
        try:
            res = ray.get(ref)
        except RayError as e:
            res = _died(e, spec.retries)
        cache.put(key, res)
        finish(Outcome(i, p, key, res, False, time.monotonic() - t0))
    now = time.monotonic()
    for ref, (i, p, key, t0) in list(flying.items()):
        if now - t0 > limit:  # the point's own alarm did not fire (a hung worker): give up on it
            ray.cancel(ref, force=True)
            del flying[ref]
            finish(Outcome(i, p, key, PointResult(f"timed out after {limit:g} s (cancelled)", cacheable=False),
                           False, now - t0))


def run_sweep(spec: SweepSpec, cache_dir: Path, address: str | None = None, workers: int | None = None,
              on_result: Callable[[Outcome], None] = lambda o: None, on_start: Callable[[int], None] = lambda n: None
              ) -> list[Outcome]:
    """The spec's grid (or search) through the cache and Ray; `on_start` gets the number of points."""
    from slmc.sweep.search import SearchFeed

    engine = _Ray(spec, {m: load_blob(m) for m in spec.models}, address, workers)
    try:
        feed: GridFeed | SearchFeed = SearchFeed(spec) if spec.search is not None else GridFeed(spec.points())
        on_start(feed.total)
        return run_feed(feed, spec, Cache(cache_dir), engine, on_result)
    finally:
        engine.close()
