"""The sweep spec: which models, targets and axes, grid or search. Read from TOML (tomllib) and the CLI's
quick-grid flags, every key and value checked here, before any point runs, with one-line errors.

    models = ["../shared/models/stories260K/stories260K.bin"]   # paths relative to the current folder
    targets = ["cortex-m33", "rv32imac"]
    steps = 16                  # positions each point runs (slmc run --steps)
    timeout_s = 600             # per point; a point past it records "timed out" and the sweep goes on
    retries = 2                 # Ray re-runs a point whose worker died this many times
    [grid]                      # every combination of the listed values
    numerics = ["q8", "int8"]
    kv_cache = ["fp32", "fp16"]
    [search]                    # or: Optuna's NSGA-II over the same axes (search.py)
    trials = 40
    objectives = ["est_ms_per_token", "est_uj_per_token", "sram_bytes"]   # all minimised
    [search.space]
    numerics = ["q8", "int8"]

Axes that are not compile options (sweep/power.py): `opp` ("MHz@V", the RP2350 operating point latency and
energy are estimated at), `dvfs_latency_ms` (slmc dvfs's per-layer schedule under that budget, compiled into
the point's program; RP2350 targets). `batch` runs the point as `slmc run --prompt-ids-file` with B
requests from BOS.
"""

from __future__ import annotations

import itertools
import sys
from dataclasses import dataclass, field
from pathlib import Path

from slmc.config import MAX_CHIPS, CompileOptions
from slmc.errors import SlmcError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

MAX_POINTS = 100_000
Value = str | int | float


@dataclass(frozen=True)
class Axis:
    """One sweepable option: its spec and column name, the CompileOptions field it sets ("" where the point
    runner applies it, sweep/power.py), its type and its allowed values (strings) or bounds (numbers)."""
    name: str
    option: str
    kind: type
    choices: tuple[str, ...] = ()
    minimum: int | float | None = None
    maximum: int | float | None = None


AXES: dict[str, Axis] = {a.name: a for a in (
    Axis("numerics", "numerics", str, ("fp32", "q8", "int8")),
    Axis("kv_cache", "kv_cache", str, ("fp32", "fp16", "int8")),
    Axis("mem", "mem", str),
    Axis("cores", "cores", int, minimum=1),
    Axis("chips", "chips", int, minimum=1, maximum=MAX_CHIPS),
    Axis("fan_in", "fan_in", int, minimum=2),
    Axis("context", "context", int, minimum=1),
    Axis("seq", "prefill_chunk", int, minimum=0),
    Axis("mode", "mode", str, ("decode", "prefill")),
    Axis("memory_sharing", "memory_sharing", str, ("on", "off")),
    Axis("weights_sram", "weights_sram", str, ("auto", "boot", "off")),
    Axis("engine", "engine", str),
    Axis("batch", "batch", int, minimum=1, maximum=64),
    Axis("opp", "", str),
    Axis("dvfs_latency_ms", "", float, minimum=0.0, maximum=1e6),
)}
TOP_KEYS = ("models", "targets", "steps", "timeout_s", "retries", "grid", "search")
SEARCH_KEYS = ("trials", "objectives", "seed", "population", "space")


@dataclass(frozen=True)
class Point:
    """One compile plus run: the model as the spec names it, the target, the positions run, and the
    axes' values (only those the spec sets, in AXES order)."""
    model: str
    target: str
    steps: int
    options: tuple[tuple[str, Value], ...] = ()

    def value(self, axis: str) -> Value | None:
        return dict(self.options).get(axis)

    def compile_options(self, model: Path, out: Path) -> CompileOptions:
        return CompileOptions(model, self.target, out=out,
                              **{AXES[a].option: v for a, v in self.options if AXES[a].option})

    def label(self) -> str:
        return " ".join([Path(self.model).name, self.target, *(f"{a}={v}" for a, v in self.options)])


@dataclass(frozen=True)
class Search:
    trials: int
    objectives: tuple[str, ...]
    seed: int = 0
    population: int = 0   # NSGA-II's population; 0: chosen from the trials (search.py)


@dataclass(frozen=True)
class SweepSpec:
    models: tuple[str, ...]
    targets: tuple[str, ...]
    steps: int = 16
    axes: tuple[tuple[str, tuple[Value, ...]], ...] = ()   # the grid, or the search space
    search: Search | None = None
    timeout_s: float = 600.0
    retries: int = 2
    source: str = field(default="", compare=False)          # the spec's text, kept beside the results

    def points(self) -> list[Point]:
        """Every point of the grid (a search's points come from search.py), in a fixed order."""
        names = [a for a, _ in self.axes]
        out = [Point(m, t, self.steps, tuple(zip(names, combo)))
               for m in self.models for t in self.targets
               for combo in itertools.product(*(vals for _, vals in self.axes))]
        return out

    def count(self) -> int:
        n = len(self.models) * len(self.targets)
        for _, vals in self.axes:
            n *= len(vals)
        return n


def _err(what: str, fix: str) -> SlmcError:
    return SlmcError(f"sweep spec: {what}", fix)


def _list(v: object, key: str) -> list:
    vals = v if isinstance(v, list) else [v]
    if not vals:
        raise _err(f"'{key}' is empty", f"give at least one value for {key}")
    return vals


def _int(v: object, key: str, least: int, most: int | None = None) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < least or (most is not None and v > most):
        bound = f"from {least} to {most}" if most is not None else f"of at least {least}"
        raise _err(f"{key} = {v!r} is not an integer {bound}", f"e.g. {key} = {max(least, 1)}")
    return v


def _float(v: object, key: str, above: float, most: float) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not above < v <= most:
        raise _err(f"{key} = {v!r} is not a number in ({above:g}, {most:g}]", f"e.g. {key} = 20.0")
    return float(v)


def _axis_values(name: str, raw: object) -> tuple[Value, ...]:
    from slmc.sweep.power import parse_opp

    if name not in AXES:
        raise _err(f"unknown axis '{name}'", f"use one of: {', '.join(AXES)}")
    ax = AXES[name]
    out: list[Value] = []
    for v in _list(raw, name):
        if ax.kind is int:
            v = _int(v, name, ax.minimum if ax.minimum is not None else 0, ax.maximum)
        elif ax.kind is float:
            v = _float(v, name, float(ax.minimum or 0.0), float(ax.maximum or 1e300))
        elif name == "opp":
            if not isinstance(v, str):
                raise _err(f"opp value {v!r} is not a string", 'e.g. opp = ["150MHz@1.10V", "75MHz@1.05V"]')
            parse_opp(v)
        elif not isinstance(v, str) or not v or (ax.choices and v not in ax.choices):
            fix = f"use {' or '.join(repr(c) for c in ax.choices)}" if ax.choices else f"give {name} values as strings"
            raise _err(f"{name} value {v!r} is not allowed", fix)
        if v not in out:
            out.append(v)
    return tuple(out)


def _axes(table: object, key: str) -> tuple[tuple[str, tuple[Value, ...]], ...]:
    if not isinstance(table, dict):
        raise _err(f"[{key}] must be a table of axis = [values]", f"e.g. [{key}] numerics = [\"q8\", \"int8\"]")
    given = {name: _axis_values(name, raw) for name, raw in table.items()}
    return tuple((name, given[name]) for name in AXES if name in given)


def _search(table: object) -> tuple[Search, tuple]:
    from slmc.sweep.results import FIGURES

    if not isinstance(table, dict):
        raise _err("[search] must be a table", "e.g. [search] trials = 20 and [search.space] numerics = [...]")
    for k in table:
        if k not in SEARCH_KEYS:
            raise _err(f"unknown key '{k}' in [search]", f"use {', '.join(SEARCH_KEYS)}")
    objectives = tuple(_list(table.get("objectives", ["est_ms_per_token", "est_uj_per_token", "sram_bytes"]),
                             "objectives"))
    numeric = [f.name for f in FIGURES if f.numeric]
    for o in objectives:
        if o not in numeric:
            raise _err(f"objective {o!r} is not a numeric result column", f"use some of: {', '.join(numeric)}")
    s = Search(trials=_int(table.get("trials", 20), "trials", 1, MAX_POINTS), objectives=objectives,
               seed=_int(table.get("seed", 0), "seed", 0), population=_int(table.get("population", 0), "population", 0))
    return s, _axes(table.get("space", {}), "search.space")


def parse_spec(data: dict, source: str = "") -> SweepSpec:
    """A SweepSpec from the spec's TOML tables (already merged with the CLI's flags)."""
    from slmc.targets import get_target

    for k in data:
        if k not in TOP_KEYS:
            raise _err(f"unknown key '{k}'", f"use {', '.join(TOP_KEYS)}")
    if "models" not in data:
        raise _err("no models", "add models = [\"path/to/model.bin\"] or pass --model")
    models = tuple(dict.fromkeys(str(m) for m in _list(data["models"], "models")))
    for m in models:
        p = Path(m)
        if not (p.is_file() or p.is_dir()):
            raise _err(f"model '{m}' does not exist", "model paths are relative to the current folder")
    targets = tuple(dict.fromkeys(_list(data.get("targets", ["host"]), "targets")))
    for t in targets:
        if not isinstance(t, str):
            raise _err(f"target {t!r} is not a name", "e.g. targets = [\"cortex-m33\"]")
        get_target(t)
    if "grid" in data and "search" in data:
        raise _err("both [grid] and [search]", "keep one: a grid runs every combination, a search samples them")
    search, axes = _search(data["search"]) if "search" in data else (None, _axes(data.get("grid", {}), "grid"))
    timeout = data.get("timeout_s", 600)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout <= 86400:
        raise _err(f"timeout_s = {timeout!r} is not a number of seconds in (0, 86400]", "e.g. timeout_s = 600")
    spec = SweepSpec(models, targets, _int(data.get("steps", 16), "steps", 1), axes, search, float(timeout),
                     _int(data.get("retries", 2), "retries", 0, 10), source)
    if spec.count() > MAX_POINTS:
        raise _err(f"{spec.count():,} points", f"a sweep takes up to {MAX_POINTS:,}: split it, or use [search]")
    return spec


def read_toml(path: Path) -> dict:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise SlmcError(f"cannot read the sweep spec '{path}' ({e.strerror})", "check the path") from None
    except UnicodeDecodeError:
        raise SlmcError(f"the sweep spec '{path}' is not UTF-8 text", "give a TOML file") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise SlmcError(f"the sweep spec '{path}' is not valid TOML ({e})", "fix the line it names") from None


def quick_axes(items: list[str]) -> dict[str, list]:
    """--axis NAME=V1,V2 flags as a [grid] table (integers where the axis takes them)."""
    out: dict[str, list] = {}
    for item in items:
        name, sep, vals = item.partition("=")
        name = name.strip()
        if not sep or not vals.strip():
            raise SlmcError(f"--axis '{item}' is not NAME=V1,V2,...", "e.g. --axis numerics=q8,int8")
        if name not in AXES:
            raise SlmcError(f"--axis: unknown axis '{name}'", f"use one of: {', '.join(AXES)}")
        raw = [v.strip() for v in vals.split(",") if v.strip()]
        kind = AXES[name].kind
        if kind in (int, float):
            try:
                raw = [kind(v) for v in raw]
            except ValueError:
                what = "integers" if kind is int else "numbers"
                raise SlmcError(f"--axis {name} takes {what}, not '{vals}'", f"e.g. --axis {name}=1,2") from None
        out[name] = raw
    return out
