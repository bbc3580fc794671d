"""`slmc simulate` (one model over N chips) and `slmc dvfs` (voltage, clock and ISA per layer on the
RP2350): the system-level studies, registered on cli.py's app."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from slmc.cli_safety import NUMERICS, _fail, _progress, err, input_path
from slmc.errors import SlmcError
from slmc.output import check_file, check_folder, output_file


def simulate(model: str = typer.Argument(..., help="model file, or a shape name (tinyllama42M, stories15M, stories260K)"),
             target: str = typer.Option("siracusa-like", "-t", "--target", help="a target with a multi-chip system model"),
             chips: str = typer.Option("1,2,4,8,16,32,64", "--chips", help="comma-separated chip counts"),
             mode: str = typer.Option("decode", "--mode", help="decode | prefill"),
             fanin: int = typer.Option(2, "--reduce-fanin", help="fan-in K of the hierarchical reduction"),
             classifier: str = typer.Option("split", "--classifier", help="split (vocab rows over chips) | root | none"),
             context: int = typer.Option(256, "--context", help="KV-cache positions (decode attends all of them)"),
             prompt: int = typer.Option(64, "--prompt", help="prompt chunk length in prefill mode"),
             heads: Optional[int] = typer.Option(None, "--heads", help="many-head variant: this many query and KV heads"),
             as_json: bool = typer.Option(False, "--json", help="print JSON instead of the table"),
             plot_file: Optional[Path] = typer.Option(None, "--plot", help="draw speedup, EDP gain and time terms (PNG)")
             ) -> None:
    """Simulate MODEL split over N chips (heads / FFN slices, two syncs per block): time, energy, EDP per token."""
    from slmc.sim.system import explain, plot, resolve_model
    from slmc.sim.system import simulate as run_sim

    try:
        try:
            counts = [int(c) for c in chips.split(",") if c.strip()]
        except ValueError:
            raise SlmcError(f"cannot read chip counts '{chips}'", "use e.g. --chips 1,2,4,8") from None
        if plot_file:
            check_file(plot_file, "--plot")
        if heads is not None and heads < 1:
            raise SlmcError(f"--heads {heads} must be positive", "e.g. --heads 16")
        cfg = resolve_model(model, heads)
        res = run_sim(cfg, counts, target, mode, fanin, classifier, context, prompt)
        if plot_file:
            with output_file(plot_file, "--plot") as tmp:  # written beside, renamed over (output.py)
                plot(res, tmp)
    except SlmcError as e:
        _fail(e)
        return
    if as_json:
        print(json.dumps(res, indent=1))
        return
    from rich.table import Table

    t = Table("chips", "ms/token", "mJ/token", "speedup", "EDP gain", "B/link/token", "weights", "KV",
              "max share B", "dominant", title=f"{model}{f' ({heads} heads)' if heads else ''} on {target}, {mode}, "
              f"fan-in {fanin}, classifier {classifier}, context {context}")
    for p in res["points"]:
        t.add_row(str(p["n_chips"]), f"{p['time_per_token_s'] * 1e3:.3f}", f"{p['energy_per_token_j'] * 1e3:.3f}",
                  f"{p['speedup']:.2f}", f"{p['edp_gain']:.2f}", f"{p['bytes_per_link_per_token']:,.0f}",
                  p["weights_in"], p["kv_in"], f"{p['max_weight_share_bytes']:,}", p["dominant"])
    Console(width=None if sys.stdout.isatty() else 160).print(t)
    for line in explain(res):
        print(line)
    notes = {n for p in res["points"] for n in p["partition_notes"]}
    for n in sorted(notes):
        print(f"split: {n}")
    if plot_file:
        err.print(f"wrote {plot_file}", highlight=False)


def dvfs(model: Path = typer.Argument(..., help="llama2.c .bin, HuggingFace Llama folder, or .onnx"),
         target: str = typer.Option("rp2350", "-t", "--target", help="rp2350 (both ISAs)"),
         numerics: str = typer.Option("q8", "-q", "--quant", help="fp32 | q8 | int8"),
         latency_ms: Optional[float] = typer.Option(None, "--latency-ms", help="latency budget per token "
                                                    "(default: the race-to-idle latency)"),
         energy_uj: Optional[float] = typer.Option(None, "--energy-uj", help="energy budget per token"),
         as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
         plot: Optional[Path] = typer.Option(None, "--plot", help="PNG of the energy-latency Pareto front"),
         unofficial: bool = typer.Option(False, "--unofficial", help="also voltages outside 1.05-1.16 V (slower)"),
         steps: int = typer.Option(8, "--steps", "-n", help="decode steps counted per ISA"),
         isa: str = typer.Option("both", "--isa", help="arm | riscv | both (a change is a reboot) | dual (one core "
                                 "of each ISA up at once; rows of matrix products may be split between them)"),
         emit: Optional[Path] = typer.Option(None, "--emit", help="compile the model with the schedule's "
                                             "slmc_set_opp calls into this folder (needs --isa arm or riscv)")) -> None:
    """Choose voltage, clock and ISA per layer part on the RP2350 (MODELLED energy, estimated cycles)."""
    from slmc.dvfs_profile import profile_model
    from slmc.sim.dvfs import ISA_TARGETS, build_groups, solve
    from slmc.sim.dvfs_plot import plot as draw
    from slmc.sim.dual import DUAL_ISAS, DualPowerModel, dual_groups
    from slmc.sim.power import ISAS, PowerModel

    try:
        if target != "rp2350":
            raise SlmcError(f"dvfs knows the RP2350 only, not '{target}'", "use -t rp2350")
        if numerics not in NUMERICS:
            raise SlmcError(f"unknown numerics '{numerics}'", f"use -q one of {', '.join(NUMERICS)}")
        if latency_ms is not None and energy_uj is not None:
            raise SlmcError("--latency-ms and --energy-uj both given", "give one budget")
        if any(b is not None and not (math.isfinite(b) and b > 0) for b in (latency_ms, energy_uj)):
            raise SlmcError("budgets must be positive finite numbers", "e.g. --latency-ms 20")
        if steps <= 0:
            raise SlmcError(f"--steps {steps} must be positive", "e.g. --steps 8")
        isas = {"arm": ("arm",), "riscv": ("riscv",), "both": ISAS, "dual": DUAL_ISAS}.get(isa)
        if isas is None:
            raise SlmcError(f"unknown --isa '{isa}'", "use arm, riscv, both or dual")
        if emit is not None and len(isas) != 1:
            raise SlmcError(f"--emit needs one ISA, not --isa {isa}: the emitted program runs on one core",
                            "add --isa arm or --isa riscv")
        input_path(model, "model", folder_ok=True)  # profiling hashes every byte of it: no FIFO
        if emit is not None:  # refused before minutes of profiling, not after them
            check_folder(emit, "--emit")
        if plot is not None:
            check_file(plot, "--plot")
        with _progress() as p:
            task = p.add_task("profiling", total=None)
            profiles = profile_model(model, numerics, steps, lambda s: p.update(task, description=s))
            p.update(task, description="scheduling")
            groups, pm, shares = build_groups(profiles), PowerModel(), None
            if isa == "dual":
                pm = DualPowerModel()
                groups, shares = dual_groups(groups, profiles, pm.p["dual"]["split_sync_cycles"])
            res = solve(groups, pm, latency_s=None if latency_ms is None else latency_ms / 1e3,
                        energy_j=None if energy_uj is None else energy_uj / 1e6, unofficial=unofficial, isas=isas)
            if shares is not None:
                for row in res["schedule"]:
                    row["arm_row_share"] = shares[row["group"]] if row["isa"] == "split" else None
            if emit is not None:
                from slmc.codegen.pico import schedule_steps
                from slmc.driver import CompileOptions, compile_model

                p.update(task, description=f"compiling {emit}")
                compile_model(CompileOptions(model, ISA_TARGETS[isas[0]], numerics, emit, dvfs=schedule_steps(res)),
                              lambda s: p.update(task, description=f"compiling: {s}"),
                              extra_files={"dvfs.json": json.dumps(res, indent=1) + "\n"})
                res["emitted"] = str(emit)
        if plot is not None:
            with output_file(plot, "--plot") as tmp:
                draw(res, tmp)
            res["plot"] = str(plot)
    except SlmcError as e:
        _fail(e)
        return
    if as_json:
        print(json.dumps(res))
        return
    from rich.table import Table

    t = Table("group", "ISA", "MHz", "V", "cycles", "flash B", "us", "uJ", "bound",
              title="RP2350 schedule per token (MODELLED energy, estimated cycles from exact instruction counts)")
    for s in res["schedule"]:
        t.add_row(s["group"], s["isa"], f"{s['clock_mhz']:g}", f"{s['voltage_v']:.2f}", f"{s['cycles']:,.0f}",
                  f"{s['flash_bytes']:,.0f}", f"{s['seconds'] * 1e6:,.0f}", f"{s['energy_j'] * 1e6:,.1f}",
                  "flash" if s["memory_bound"] else "compute" + (f", {s['arm_row_share']:.0%} rows on M33"
                                                                 if s.get("arm_row_share") is not None else ""))
    out = Console(width=None if sys.stdout.isatty() else 160)
    out.print(t)
    out.print(f"schedule: {res['latency_per_token_s'] * 1e3:.3f} ms, {res['energy_per_token_j'] * 1e6:.1f} uJ per token "
              f"({len(res['transitions'])} transitions)")
    for k, b in res["baselines"].items():
        if b.get("energy_per_token_j"):
            out.print(f"{k}: {b['latency_per_token_s'] * 1e3:.3f} ms, {b['energy_per_token_j'] * 1e6:.1f} uJ per token; "
                      f"saving {b['saving_vs_this'] + 0.0 if abs(b['saving_vs_this']) >= 1e-9 else 0.0:.1%}")
        else:
            out.print(f"{k}: does not meet the budget")
    if plot is not None:
        err.print(f"wrote {plot}", highlight=False)


def register(app: typer.Typer) -> None:
    """Adds `simulate` and `dvfs` to the `slmc` command."""
    app.command()(simulate)
    app.command()(dvfs)
