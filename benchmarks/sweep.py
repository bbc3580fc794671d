"""`slmc sweep` on Ray (issue 22): a 32-point sweep on 1 and on 2 local worker processes, and the engine's
per-point overhead against calling the compiler and the runner directly.

    python benchmarks/sweep.py     # measures, stores results.json["sweep"], rewrites docs/BENCHMARKS.md
    python benchmarks/sweep.py --power   # only the operating-point / DVFS rows (results.json["sweep_power"])

The points: stories260K x {cortex-m33, rv32imac} x {q8, int8} x memory sharing {on, off} x context
{64, 128, 256, 512}, 4 positions each (a compile, a C build and an emulated run with exact counts).
"Direct" runs the same 32 points one after another in this process through `run_point` (compile_model
plus the run `slmc run --json` does); the engine's runs start Ray in this process (`ray.init`, counted
in the wall time) with a fresh cache each, so every point is computed. The Pareto picture of the
2-worker run is docs/sweep_pareto.png.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT.parent / "shared" / "models" / "stories260K" / "stories260K.bin"
PICTURE = ROOT / "docs" / "sweep_pareto.png"


def _spec():
    from slmc.sweep.spec import parse_spec

    return parse_spec(dict(models=[str(MODEL)], targets=["cortex-m33", "rv32imac"], steps=4, timeout_s=600,
                           grid=dict(numerics=["q8", "int8"], memory_sharing=["on", "off"],
                                     context=[64, 128, 256, 512])))


def measure(log=print) -> dict:
    from slmc.sweep.engine import run_sweep
    from slmc.sweep.pareto import write_pareto
    from slmc.sweep.point import load_blob, run_point

    spec = _spec()
    points = spec.points()
    blob = load_blob(str(MODEL))
    t0 = time.perf_counter()
    direct = []
    for p in points:
        s = time.perf_counter()
        res = run_point(p, blob, spec.timeout_s)
        assert res.status == "ok", res.status
        direct.append(time.perf_counter() - s)
    direct_wall = time.perf_counter() - t0
    log(f"sweep: direct {direct_wall:.1f} s for {len(points)} points")
    runs = {}
    for workers in (1, 2):
        tmp = Path(tempfile.mkdtemp(prefix="slmc-bench-sweep-"))
        try:
            t0 = time.perf_counter()
            out = run_sweep(spec, tmp / "cache", workers=workers)
            wall = time.perf_counter() - t0
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        assert all(o.result.status == "ok" and not o.cached for o in out)
        work = sum(o.result.compile_s + o.result.run_s for o in out)
        runs[workers] = dict(wall_s=wall, point_work_s=work)
        log(f"sweep: {workers} worker(s) {wall:.1f} s")
        rows = [dict(model=o.point.model, target=o.point.target, status=o.result.status, **dict(o.point.options),
                     **o.result.figures) for o in out]
    PICTURE.write_bytes(write_pareto(rows, "numerics")["pareto.png"])
    best = sorted((r for r in rows), key=lambda r: r["est_ms_per_token"])[0]
    return dict(points=len(points), steps=spec.steps, direct_wall_s=direct_wall, direct_mean_s=direct_wall / len(points),
                one_worker=runs[1], two_workers=runs[2], speedup=runs[1]["wall_s"] / runs[2]["wall_s"],
                overhead_per_point_s=(runs[1]["wall_s"] - direct_wall) / len(points),
                fastest=dict(target=best["target"], numerics=best["numerics"], context=best["context"],
                             memory_sharing=best["memory_sharing"], est_ms_per_token=best["est_ms_per_token"],
                             est_uj_per_token=best["est_uj_per_token"], sram_bytes=best["sram_bytes"]))


def render(res: dict | None) -> list[str]:
    head = "## 15. Design-space sweeps on Ray (issue 22)"
    if not res:
        return [head, "", "Not measured in this run.", ""]
    one, two = res["one_worker"], res["two_workers"]
    f = res["fastest"]
    return [head, "", f"`slmc sweep` over {res['points']} points (stories260K x {{cortex-m33, rv32imac}} x {{q8, int8}} x "
            f"memory sharing {{on, off}} x context {{64, 128, 256, 512}}, {res['steps']} positions each: compile, C build, "
            "emulated run with exact counts), on this project's 2-core machine shared with other work, so the times "
            "move by 10-20% between runs. Reproduce: `python benchmarks/sweep.py`.", "",
            "| run | wall s | per point s | against 1 worker |", "|---|---|---|---|",
            f"| direct: `run_point` one after another in one process | {res['direct_wall_s']:.1f} | "
            f"{res['direct_mean_s']:.2f} | |",
            f"| Ray, 1 worker process (ray.init included) | {one['wall_s']:.1f} | {one['wall_s'] / res['points']:.2f} | 1.00x |",
            f"| Ray, 2 worker processes | {two['wall_s']:.1f} | {two['wall_s'] / res['points']:.2f} | "
            f"**{res['speedup']:.2f}x** |", "",
            f"Engine overhead per point: {res['overhead_per_point_s']:+.2f} s against the direct run (1 worker; Ray's "
            "start-up spread over the points; the machine's other load moves this by more than the overhead), and "
            f"**{(one['wall_s'] - one['point_work_s']) / res['points']:.2f} s** within the 1-worker run itself (its wall "
            f"time less the {one['point_work_s']:.1f} s its points spent compiling and running: Ray's start-up, "
            "shipping the model, scheduling, temp folders). With 2 workers the points' own compile and run time "
            f"grew from {one['point_work_s']:.0f} s to {two['point_work_s']:.0f} s in all: the two cores are shared "
            f"with other work and each point's C build already runs `make -j2`. The fastest point: {f['target']} {f['numerics']}, context "
            f"{f['context']}, sharing {f['memory_sharing']}: {f['est_ms_per_token']:.2f} ms and "
            f"{f['est_uj_per_token']:.0f} uJ per token, {f['sram_bytes']:,} B of RAM (ESTIMATES from exact "
            "instruction counts at 150 MHz and the RP2350 power model at 1.10 V).", "",
            "![Pareto fronts of the 32-point sweep](sweep_pareto.png)", ""]


POWER_PICTURE = ROOT / "docs" / "sweep_power.png"
OPPS = ("150MHz@1.15V", "150MHz@1.10V", "125MHz@1.05V", "100MHz@1.05V", "75MHz@1.05V", "50MHz@1.05V")
BUDGET_FACTORS = (1.1, 1.5, 2.0, 3.0)


def measure_power(log=print) -> dict:
    """The `opp` and `dvfs_latency_ms` axes: stories260K q8 on rp2350-arm, 16 positions, at six operating
    points, then under DVFS budgets of 1.1-3x the 150 MHz latency (each point through run_point)."""
    from slmc.sweep.point import load_blob, run_point
    from slmc.sweep.spec import Point

    blob, rows = load_blob(str(MODEL)), []

    def point(**axes) -> dict:
        p = Point(str(MODEL), "rp2350-arm", 16, (("numerics", "q8"), *axes.items()))
        res = run_point(p, blob, 1200)
        assert res.status == "ok", res.status
        f = res.figures
        log(f"sweep power: {p.label()}: {f['est_ms_per_token']:.3f} ms, {f['est_uj_per_token']:.1f} uJ")
        return dict(axes, ms=f["est_ms_per_token"], uj=f["est_uj_per_token"], ids=f["ids"],
                    transitions=f["dvfs_transitions"])

    rows = [point(opp=o) for o in OPPS]
    fast = next(r["ms"] for r in rows if r["opp"] == "150MHz@1.10V")
    rows += [point(dvfs_latency_ms=round(fast * k, 3)) for k in BUDGET_FACTORS]
    assert len({r["ids"] for r in rows}) == 1, "operating points changed the ids"
    _draw_power(rows)
    return dict(rows=[{k: v for k, v in r.items() if k != "ids"} for r in rows], steps=16)


def _draw_power(rows: list[dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    st = [r for r in rows if "opp" in r]
    dv = [r for r in rows if "dvfs_latency_ms" in r]
    ax.plot([r["ms"] for r in st], [r["uj"] for r in st], "o-", label="one operating point (opp axis)")
    for r in st:
        ax.annotate(r["opp"], (r["ms"], r["uj"]), fontsize=7, xytext=(4, 4), textcoords="offset points")
    ax.plot([r["ms"] for r in dv], [r["uj"] for r in dv], "s--", label="DVFS schedule (dvfs_latency_ms axis)")
    ax.set_xlabel("latency per token (ms, ESTIMATE)")
    ax.set_ylabel("energy per token (uJ, MODELLED)")
    ax.set_title("stories260K q8 on the RP2350 M33: operating points and DVFS budgets")
    ax.legend()
    fig.tight_layout()
    fig.savefig(POWER_PICTURE, dpi=110)
    plt.close(fig)


def render_power(res: dict | None) -> list[str]:
    head = "### 15b. Operating points and DVFS budgets as sweep axes"
    if not res:
        return [head, "", "Not measured in this run.", ""]
    lines = [head, "", f"stories260K q8 on rp2350-arm, {res['steps']} positions, one `run_point` per row (sweep axes "
             "`opp` and `dvfs_latency_ms`, `src/slmc/sweep/power.py`). Latency: exact instruction counts through the "
             "M33 cycle model at the point's clock plus the weights read from flash at that clock's flash rate; energy: "
             "the RP2350 power model (MODELLED), the core active throughout; under a DVFS budget the schedule's own "
             "latency and energy at that budget (idle power to the budget included). The ids are identical in every "
             "row. Reproduce: `python benchmarks/sweep.py`.", "",
             "| axis | value | ms/token (ESTIMATE) | uJ/token (MODELLED) | DVFS transitions |", "|---|---|---|---|---|"]
    for r in res["rows"]:
        axis = "opp" if "opp" in r else "dvfs_latency_ms"
        val = r["opp"] if "opp" in r else f"{r['dvfs_latency_ms']:g}"
        lines.append(f"| {axis} | {val} | {r['ms']:.3f} | {r['uj']:.1f} | "
                     f"{'' if r['transitions'] is None else r['transitions']} |")
    return lines + ["", "![Operating points and DVFS budgets](sweep_power.png)", ""]


def main() -> None:
    sys.path.insert(0, str(Path(__file__).parent))
    import render as doc

    if "--power" not in sys.argv:
        res = measure()
        print("\n".join(render(res)))
        print(doc.store("sweep", res))
    power = measure_power()
    print("\n".join(render_power(power)))
    print(doc.store("sweep_power", power))


if __name__ == "__main__":
    main()
