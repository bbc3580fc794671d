"""results.parquet: one row per point, a fixed schema. The columns: model, target, steps, every axis
(null where the spec does not set it), key (the point's content hash), status ("ok" or the one-line
error), then every figure below, null where the point does not give it. Timings (not reproducible)
go to timings.parquet, so two runs of one sweep write the same results.parquet."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from slmc.errors import SlmcError

ENERGY_V = 1.10          # the RP2350's default core voltage: the operating point energy is estimated at
REFERENCE_MHZ = 150.0    # the clock where a target has none (cortex-m33, rv32imac): the RP2350's rated one


@dataclass(frozen=True)
class Figure:
    """One result column: its name, Arrow type ("int64", "float64", "string", "bool") and where it comes
    from: a path into report.json (or manifest.json), into `slmc run --json`'s object, or computed."""
    name: str
    kind: str
    report: tuple[str, ...] = ()
    run: tuple[str, ...] = ()
    label: str = ""

    @property
    def numeric(self) -> bool:
        return self.kind in ("int64", "float64")


FIGURES: tuple[Figure, ...] = (
    Figure("params", "int64", ("params",)),
    Figure("macs_per_token", "int64", ("macs_per_token",)),
    Figure("arena_bytes", "int64", ("arena_bytes",), label="arena (B)"),
    Figure("lower_bound_bytes", "int64", ("lower_bound_bytes",)),
    Figure("shared_lower_bound_bytes", "int64", ("shared_lower_bound_bytes",)),
    Figure("activation_arena_bytes", "int64", ("activation_arena_bytes",)),
    Figure("activation_lower_bound_bytes", "int64", ("activation_lower_bound_bytes",)),
    Figure("weights_bytes", "int64", ("weights_bytes",), label="weights (B)"),
    Figure("kv_cache_bytes", "int64", ("kv_cache_bytes",)),
    Figure("kv_cache_used", "string", ("kv_cache",)),
    Figure("context_used", "int64", ("config", "seq_len")),
    Figure("planner", "string", ("planner",)),
    Figure("plan_optimal", "bool", ("plan_optimal",)),
    Figure("plan_best_bound_bytes", "int64", ("plan_best_bound_bytes",)),
    Figure("weights_in", "string", ("memory", "weights_in")),
    Figure("weights_sram_bytes", "int64", ("weights_sram_bytes",)),
    Figure("sram_used_bytes", "int64", ("memory", "sram", "used")),
    Figure("sram_capacity_bytes", "int64", ("memory", "sram", "capacity")),
    Figure("flash_used_bytes", "int64", ("memory", "flash", "used")),
    Figure("flash_capacity_bytes", "int64", ("memory", "flash", "capacity")),
    Figure("n_chips", "int64", ("n_chips",)),
    Figure("int8_top1_agreement", "float64", ("int8", "top1_agreement"), label="top-1 agreement with fp32"),
    Figure("int8_mean_kl", "float64", ("int8", "mean_kl")),
    Figure("positions", "int64", run=("positions",)),
    Figure("ids", "string", run=("ids",)),
    Figure("instructions_per_token", "float64", run=("instructions_per_token",), label="instructions/token"),
    Figure("program_instructions", "int64", run=("program_instructions",)),
    Figure("linear_instructions_per_mac", "float64", run=("linear_instructions_per_mac",)),
    Figure("estimated_cycles_per_token", "float64", run=("estimated_cycles_per_token",), label="cycles/token (est.)"),
    Figure("estimated_tokens_per_s", "float64", run=("estimated_tokens_per_s",)),
    Figure("estimated_flash_seconds_per_token", "float64", run=("estimated_flash_seconds_per_token",)),
    Figure("host_tokens_per_s", "float64", run=("tokens_per_s",)),
    Figure("link_bytes_per_token", "float64", run=("link_bytes_per_token",)),
    Figure("weight_bytes_per_token", "float64", run=("weight_bytes_per_token",)),
    Figure("sequences", "int64", run=("sequences",)),
    # computed (derive below): the Pareto axes
    Figure("sram_bytes", "int64", label="RAM (B)"),
    Figure("clock_mhz", "float64"),
    Figure("voltage_v", "float64"),
    Figure("dvfs_transitions", "int64"),
    Figure("est_ms_per_token", "float64", label="latency (ms/token, ESTIMATE)"),
    Figure("est_uj_per_token", "float64", label="energy (uJ/token, ESTIMATE)"),
)
BY_NAME = {f.name: f for f in FIGURES}


def _get(d: dict | None, path: tuple[str, ...]) -> object:
    for k in path:
        if not isinstance(d, dict):
            return None
        d = d.get(k)
    return d


def _cast(f: Figure, v: object) -> object:
    if v is None:
        return None
    if f.kind == "string":
        return " ".join(map(str, v)) if isinstance(v, list) else str(v)
    if f.kind == "bool":
        return bool(v)
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    return int(v) if f.kind == "int64" else float(v)


def figures(rep: dict, run: dict | None, target_name: str, opp: str | None = None,
            dvfs: dict | None = None) -> dict[str, object]:
    """Every figure of one point from its report.json (or manifest.json), its run's JSON, and where the
    point sets them its operating point or DVFS schedule (sweep/power.py)."""
    if run is not None and run.get("links"):
        run = {**run, "link_bytes_per_token": sum(x.get("bytes_per_token", 0) for x in run["links"])}
    out = {f.name: _cast(f, _get(rep, f.report) if f.report else _get(run, f.run) if f.run else None)
           for f in FIGURES}
    out.update(derive(out, target_name, opp, dvfs))
    return out


def derive(fig: dict[str, object], target_name: str, opp: str | None = None,
           dvfs: dict | None = None) -> dict[str, object]:
    """RAM, clock, latency and energy per token. ESTIMATES: cycles from the exact instruction counts and
    the core's cycle model; seconds at the target's clock (150 MHz where it has none, the RP2350's rated
    one); energy from the RP2350 power model (sim/power.py) at 1.10 V and that clock, the core running
    throughout. At a point's `opp` the cycles and the weights read from flash are timed at that clock and
    the power taken at that voltage; under a DVFS budget latency and energy are the schedule's (MODELLED).
    The host gets its measured latency and no energy."""
    from slmc.sim.power import PowerModel
    from slmc.sweep.power import at_opp, parse_opp
    from slmc.targets import get_target

    target = get_target(target_name)
    sram = fig["sram_used_bytes"] if fig["sram_used_bytes"] is not None else fig["arena_bytes"]
    out: dict[str, object] = dict(sram_bytes=sram, clock_mhz=None, voltage_v=None, dvfs_transitions=None,
                                  est_ms_per_token=None, est_uj_per_token=None)
    if dvfs is not None:
        out.update(est_ms_per_token=dvfs["latency_per_token_s"] * 1e3,
                   est_uj_per_token=dvfs["energy_per_token_j"] * 1e6, dvfs_transitions=len(dvfs["transitions"]))
    elif opp is not None and target.emulated and fig["estimated_cycles_per_token"]:
        flash_s = fig["estimated_flash_seconds_per_token"] or 0.0
        flash_bytes = float(flash_s) * target.flash.read_bytes_per_s if target.flash and flash_s else 0.0  # type: ignore[arg-type]
        seconds, joules = at_opp(float(fig["estimated_cycles_per_token"]), flash_bytes, opp)  # type: ignore[arg-type]
        mhz, volts = parse_opp(opp)
        out.update(clock_mhz=mhz, voltage_v=volts, est_ms_per_token=seconds * 1e3, est_uj_per_token=joules * 1e6)
    elif target.emulated:
        mhz = target.clock_hz / 1e6 if target.clock_hz else REFERENCE_MHZ
        out["clock_mhz"] = mhz
        tps = fig["estimated_tokens_per_s"]
        cycles = fig["estimated_cycles_per_token"] or fig["instructions_per_token"]
        seconds = 1 / tps if tps else cycles / (mhz * 1e6) if cycles else None
        if seconds is not None:
            out["est_ms_per_token"] = seconds * 1e3
            out["est_uj_per_token"] = PowerModel().active_w(ENERGY_V, mhz) * seconds * 1e6
            out["voltage_v"] = ENERGY_V
    elif fig["host_tokens_per_s"]:
        out["est_ms_per_token"] = 1e3 / float(fig["host_tokens_per_s"])  # type: ignore[arg-type]
    return out


def schema(axes: tuple[str, ...]):
    import pyarrow as pa

    from slmc.sweep.spec import AXES

    types = {"int64": pa.int64(), "float64": pa.float64(), "string": pa.string(), "bool": pa.bool_()}
    cols = [("model", pa.string()), ("target", pa.string()), ("steps", pa.int64())]
    kinds = {int: pa.int64(), float: pa.float64(), str: pa.string()}
    cols += [(a, kinds[AXES[a].kind]) for a in axes]
    cols += [("key", pa.string()), ("status", pa.string())]
    cols += [(f.name, types[f.kind]) for f in FIGURES]
    return pa.schema(cols)


def _parquet(table) -> bytes:
    import io

    import pyarrow.parquet as pq

    buf = io.BytesIO()
    pq.write_table(table, buf)
    return buf.getvalue()


def table_bytes(rows: list[dict], axes: tuple[str, ...]) -> bytes:
    """results.parquet's bytes: the rows in the schema above, in the order given."""
    import pyarrow as pa

    sch = schema(axes)
    return _parquet(pa.Table.from_pylist([{n: r.get(n) for n in sch.names} for r in rows], schema=sch))


def timings_bytes(rows: list[dict]) -> bytes:
    """timings.parquet's bytes: per point, whether it was cached, seconds from submission to result,
    compile and run seconds, and the node that ran it."""
    import pyarrow as pa

    sch = pa.schema([("key", pa.string()), ("cached", pa.bool_()), ("seconds", pa.float64()),
                     ("compile_s", pa.float64()), ("run_s", pa.float64()), ("node", pa.string())])
    return _parquet(pa.Table.from_pylist([{n: r.get(n) for n in sch.names} for r in rows], schema=sch))


def read_rows(folder: Path) -> list[dict]:
    """results.parquet of a sweep folder as a list of rows (one-line error where it is missing or damaged)."""
    import pyarrow.parquet as pq

    path = Path(folder) / "results.parquet"
    if not path.is_file():
        raise SlmcError(f"{folder} holds no results.parquet", "run `slmc sweep SPEC -o DIR` first")
    try:
        return pq.read_table(path).to_pylist()
    except Exception as e:  # pyarrow raises several types for a damaged file
        raise SlmcError(f"cannot read {path} ({type(e).__name__}: {str(e)[:120]})", "run the sweep again") from None

