"""`slmc sweep`: a grid or a search over compile options on Ray (sweep/), registered on cli.py's app.

    slmc sweep SPEC.toml -o DIR [--json]            # DIR/results.parquet, pareto.png, sweep.html
    slmc sweep -o DIR --model M.bin -t cortex-m33 --axis numerics=q8,int8 --steps 8   # a quick grid
    slmc sweep --report DIR                          # draw the fronts again from DIR/results.parquet
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from slmc.cli_safety import _fail, err, input_path
from slmc.errors import SlmcError


def _spec_data(spec: Optional[Path], models: list[str], targets: list[str], axes: list[str],
               steps: Optional[int], timeout: Optional[float]) -> dict:
    """The spec file's tables with the quick-grid flags laid over them."""
    from slmc.sweep.spec import quick_axes, read_toml

    data: dict = {}
    if spec is not None:
        input_path(spec, "sweep spec")
        data = read_toml(spec)
    if models:
        data["models"] = list(models)
    if targets:
        data["targets"] = list(targets)
    if steps is not None:
        data["steps"] = steps
    if timeout is not None:
        data["timeout_s"] = timeout
    if axes:
        extra = quick_axes(axes)
        if isinstance(data.get("search"), dict):
            data["search"] = {**data["search"], "space": {**data["search"].get("space", {}), **extra}}
        else:
            data["grid"] = {**(data.get("grid") or {}), **extra}
    return data


def _row(o) -> dict:
    return dict(model=o.point.model, target=o.point.target, steps=o.point.steps, **dict(o.point.options), key=o.key,
                status=o.result.status, **o.result.figures)


def _report(folder: Path, colour_by: Optional[str]) -> list[Path]:
    from slmc.output import add_files
    from slmc.sweep.pareto import write_pareto
    from slmc.sweep.results import read_rows

    rows = read_rows(folder)
    if colour_by is not None and rows and colour_by not in rows[0]:
        raise SlmcError(f"--colour-by '{colour_by}' is not a column of the results", "name an axis, e.g. numerics")
    return add_files(folder, write_pareto(rows, colour_by, f"slmc sweep: {folder.name}"), "--report")


def sweep(spec: Optional[Path] = typer.Argument(None, help="sweep spec (TOML): models, targets, steps, a grid or "
                                                "a search table; see src/slmc/sweep/spec.py"),
          out: Optional[Path] = typer.Option(None, "-o", "--out", help="output folder: results.parquet, "
                                             "timings.parquet, pareto.png, sweep.html, cache/"),
          models: list[str] = typer.Option([], "--model", help="a model (repeatable; replaces the spec's)"),
          targets: list[str] = typer.Option([], "-t", "--target", help="a target (repeatable; replaces the spec's)"),
          axes: list[str] = typer.Option([], "--axis", help="NAME=V1,V2: an axis of the grid (repeatable), e.g. "
                                         "numerics=q8,int8 kv_cache=fp32,fp16 cores=1,2 context=64,128"),
          steps: Optional[int] = typer.Option(None, "--steps", "-n", help="positions each point runs (default 16)"),
          timeout: Optional[float] = typer.Option(None, "--timeout", help="seconds per point (default 600)"),
          address: Optional[str] = typer.Option(None, "--address", help="an existing Ray cluster (else "
                                                "RAY_ADDRESS, else Ray inside this process on this machine)"),
          workers: Optional[int] = typer.Option(None, "--workers", help="worker processes of the local Ray "
                                                "(default: one per CPU)"),
          cache: Optional[Path] = typer.Option(None, "--cache", help="cache folder (default OUT/cache), e.g. one "
                                               "shared by several sweeps"),
          report: Optional[Path] = typer.Option(None, "--report", help="draw the Pareto fronts of the sweep in "
                                                "this folder (pareto.png, sweep.html) and stop"),
          colour_by: Optional[str] = typer.Option(None, "--colour-by", help="colour the fronts by this column "
                                                  "(default: the first axis that varies)"),
          as_json: bool = typer.Option(False, "--json", help="print {points, computed, cached, failed}")) -> None:
    """Run a design-space sweep (compile + emulated run per point) on Ray and draw its Pareto fronts."""
    try:
        if report is not None:
            files = _report(report, colour_by)
            err.print("wrote " + ", ".join(str(f) for f in files), highlight=False)
            return
        if out is None:
            raise SlmcError("no output folder", "pass -o DIR (or --report DIR to draw an existing sweep)")
        if workers is not None and workers < 1:
            raise SlmcError(f"--workers {workers} must be at least 1", "e.g. --workers 2")
        if workers is not None and (address or "").strip():
            raise SlmcError("--workers applies to the local Ray, not to --address", "omit one of them")
        summary = _sweep(_spec_data(spec, models, targets, axes, steps, timeout), out, address, workers, cache,
                         colour_by)
    except SlmcError as e:
        _fail(e)
        return
    if as_json:
        print(json.dumps(summary.to_json()))
    else:
        print(f"{summary.points} points: {summary.computed} computed, {summary.cached} cached, {summary.failed} failed")


def _sweep(data: dict, out: Path, address: Optional[str], workers: Optional[int], cache: Optional[Path],
           colour_by: Optional[str]):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from slmc.output import add_files, check_folder, register
    from slmc.sweep.engine import run_sweep, summarize
    from slmc.sweep.pareto import write_pareto
    from slmc.sweep.results import table_bytes, timings_bytes
    from slmc.sweep.spec import parse_spec

    spec = parse_spec(data, json.dumps(data, indent=1, default=str))
    check_folder(out)
    add_files(out, {"spec.json": (spec.source + "\n").encode()})
    if cache is None:
        cache = out / "cache"
        register(out, trees=("cache",))
    elif cache.exists() and not cache.is_dir():
        raise SlmcError(f"--cache '{cache}' is not a folder", "give a folder path")
    tty = err.is_terminal
    bar = Progress(TextColumn("sweep"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.description}"),
                   TimeElapsedColumn(), console=err, transient=True, disable=not tty)
    counts = {"cached": 0, "failed": 0}
    with bar:
        task = bar.add_task("starting Ray", total=None)

        def started(n: int) -> None:
            bar.update(task, total=n, description="")

        def done(o) -> None:
            counts["cached"] += o.cached
            counts["failed"] += o.result.status != "ok"
            what = f"{counts['cached']} cached, {counts['failed']} failed; last: {o.point.label()}"
            bar.update(task, advance=1, description=what)
            if not tty:  # a log: one line per point
                state = "cached" if o.cached else f"{o.seconds:.1f} s"
                err.print(f"sweep: {o.point.label()}: {o.result.status[:160]} ({state})", highlight=False, soft_wrap=True)

        outcomes = run_sweep(spec, cache, address, workers, done, started)
    rows, seen = [], set()
    for o in outcomes:  # a search may propose a point twice: one row per point
        if o.key not in seen:
            seen.add(o.key)
            rows.append(_row(o))
    names = tuple(a for a, _ in spec.axes)
    timings = [dict(key=o.key, cached=o.cached, seconds=o.seconds, compile_s=o.result.compile_s,
                    run_s=o.result.run_s, node=o.result.node) for o in outcomes]
    files = {"results.parquet": table_bytes(rows, names), "timings.parquet": timings_bytes(timings)}
    files.update(write_pareto(rows, colour_by, f"slmc sweep: {out.name}"))
    add_files(out, files)
    return summarize(outcomes)


def register(app: typer.Typer) -> None:
    """Adds `sweep` to the `slmc` command."""
    app.command()(sweep)

