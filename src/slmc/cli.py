"""The `slmc` command."""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from slmc.errors import SlmcError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Compile small language models to static-memory C, and run them.")
err = Console(stderr=True)
NUMERICS = ("fp32", "q8", "int8")


def _fail(e: SlmcError) -> None:
    err.print(f"[bold red]error:[/] {e}", highlight=False, soft_wrap=True)
    raise typer.Exit(2)


def _progress():
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    return Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=err,
                    transient=True, disable=not err.is_terminal)


def _compile(model: Path, target: str, numerics: str, out: Path, prefill_chunk: Optional[int],
             tokenizer: Optional[Path], context: Optional[int] = None) -> dict:
    from slmc.driver import CompileOptions, compile_model

    if numerics not in NUMERICS:
        raise SlmcError(f"unknown numerics '{numerics}'", f"use -q one of {', '.join(NUMERICS)}")
    with _progress() as p:
        task = p.add_task("compiling", total=None)
        return compile_model(CompileOptions(model, target, numerics, out, prefill_chunk, tokenizer, context),
                             lambda s: p.update(task, description=s))


@app.command()
def compile(model: Path = typer.Argument(..., help="llama2.c .bin, HuggingFace Llama folder, or .onnx"),
            target: str = typer.Option("host", "-t", "--target", help="see `slmc targets`"),
            numerics: str = typer.Option("fp32", "-q", "--quant", help="fp32 | q8"),
            out: Path = typer.Option(Path("out"), "-o", "--out", help="output folder (replaced atomically)"),
            prefill_chunk: Optional[int] = typer.Option(None, "--seq", help="tokens per prompt step (0: none)"),
            tokenizer: Optional[Path] = typer.Option(None, "--tokenizer", help="tokenizer.model or tokenizer.bin"),
            context: Optional[int] = typer.Option(None, "--context", help="positions the KV cache holds "
                                                  "(default: the model's, or as many as fit the target's SRAM)")) -> None:
    """Compile MODEL into a C project in OUT, with report.json."""
    try:
        rep = _compile(model, target, numerics, out, prefill_chunk, tokenizer, context)
    except SlmcError as e:
        _fail(e)
        return
    err.print(f"wrote {out}/: arena {rep['arena_bytes']:,} B (lower bound {rep['lower_bound_bytes']:,}), "
              f"weights {rep['weights_bytes']:,} B, KV cache {rep['kv_cache_bytes']:,} B, "
              f"{rep['macs_per_token']:,} MACs/token", highlight=False)
    mem = rep.get("memory")
    if mem:
        err.print(f"fits {rep['target']}: SRAM {mem['sram']['used']:,} of {mem['sram']['capacity']:,} B "
                  f"(margin {mem['sram']['margin']:,}), flash {mem['flash']['used']:,} of {mem['flash']['capacity']:,} B "
                  f"(margin {mem['flash']['margin']:,}); weights in {mem['weights_in']}", highlight=False)
    if rep.get("model_seq_len"):
        err.print(f"[yellow]note:[/] {rep['notes'][-1]}", highlight=False)


def _parse_ids(s: str) -> list[int]:
    try:
        return [int(x) for x in s.replace(" ", "").split(",") if x != ""]
    except ValueError:
        raise SlmcError(f"--prompt-ids '{s}' is not a comma-separated list of integers", "e.g. --prompt-ids 1,450,29") from None


def _run(project: Path, steps: int, temperature: float, top_p: float, seed: int, prompt: Optional[str],
         prompt_ids: Optional[str], ids: bool, as_json: bool, dump_logits: Optional[Path], profile: bool = False) -> None:
    from slmc.targets import get_target
    from slmc.toolchain.build import build
    from slmc.toolchain.run import llm_args, run_program

    rep_path = project / "report.json"
    if not rep_path.exists():
        raise SlmcError(f"{project} is not an slmc output folder (no report.json)", "run `slmc compile MODEL -o DIR` first")
    rep = json.loads(rep_path.read_text())
    if "config" not in rep:
        raise SlmcError(f"{project} holds a graph, not a language model", "use `slmc run DIR --inputs FILE.npz`")
    vocab = rep["config"]["vocab_size"]
    tok = None
    if rep.get("tokenizer"):
        from slmc.frontend.tokenizer import load_tokenizer

        tok = load_tokenizer(project / rep["tokenizer"])
    if prompt is not None and prompt_ids is not None:
        raise SlmcError("--prompt and --prompt-ids both given", "use one of them")
    pids: list[int] | None = None
    if prompt_ids is not None:
        pids = _parse_ids(prompt_ids)
    elif prompt is not None:
        if tok is None:
            raise SlmcError("--prompt needs a tokenizer and this build has none",
                            "compile with --tokenizer FILE, or pass --prompt-ids")
        pids = tok.encode(prompt, bos=True)
    if pids is not None and (not pids or any(i < 0 or i >= vocab for i in pids)):
        raise SlmcError(f"prompt ids must be non-empty and within 0..{vocab - 1}", "check --prompt-ids")
    if steps <= 0:
        raise SlmcError(f"--steps {steps} must be positive", "e.g. --steps 256")
    steps = min(steps, rep["config"]["seq_len"])
    target = get_target(rep["target"])
    if profile and not target.emulated:
        raise SlmcError(f"--profile counts instructions on an emulated target; {target.name} is not one",
                        "compile with -t cortex-m33, rv32imac, rp2350-arm or rp2350-riscv")
    binary = build(project)
    from slmc.frontend.tokenizer import TextStream

    stream = TextStream(tok, pids[-1] if pids else 1) if tok is not None and not ids and not as_json else None
    if stream and pids:
        sys.stdout.write(tok.decode(pids))

    def on_token(t: int) -> None:
        if stream:
            sys.stdout.write(stream.push(t))
            sys.stdout.flush()

    args = llm_args(steps, temperature, top_p, seed, pids, dump_logits)
    counts: dict = {}
    if target.emulated and (as_json or profile):  # exact counts come with an emulated run's JSON
        from slmc.toolchain.profile import count_run

        res, counts = count_run(project, target, rep, args, on_token)
    else:
        res = run_program(target, binary, args, on_token)
    tps = res.stats.get("positions", 0) / res.stats["seconds"] if res.stats.get("seconds") else None
    if as_json:
        print(json.dumps(dict(ids=res.ids, tokens_per_s=tps, target=rep["target"], positions=int(res.stats.get("positions", 0)),
                              text=tok.decode(res.ids) if tok else None, **{k: v for k, v in counts.items()
                                                                            if k not in ("target", "tokens_per_s")})))
    elif ids or tok is None:
        print(" ".join(map(str, res.ids)))
    else:
        print(flush=True)
        if tps:
            err.print(f"[dim]{tps:,.0f} tokens/s on {rep['target']}[/]")
    if profile and not as_json:
        _print_profile(counts)


def _print_profile(p: dict) -> None:
    from rich.table import Table

    from slmc.toolchain.profile import LINEAR_OPS

    t = Table("operator", "op", "kernel", "MACs", "instructions/token", "share", "instr/MAC", "est. cycles/token",
              title=f"{p['target']}: exact instruction counts ({p['counter']}), mean over {p['decode_steps']} decode steps")
    for o in p["ops"]:
        t.add_row(o["name"], o["op"], o["kernel"], f"{o['macs']:,}" if o["macs"] else "", f"{o['instructions']:,.0f}",
                  f"{o['share']:.1%}", f"{o['instructions'] / o['macs']:.2f}" if o["op"] in LINEAR_OPS else "",
                  f"{o['estimated_cycles']:,.0f}" if o["estimated_cycles"] is not None else "-")
    t.add_row("(model.c before the first kernel)", "", "", "", f"{p['prologue_instructions_per_token']:,.0f}", "", "", "")
    t.add_row("[bold]per token[/]", "", "", "", f"[bold]{p['instructions_per_token']:,.0f}[/]", "100%", "",
              f"{p['estimated_cycles_per_token']:,.0f}" if p["estimated_cycles_per_token"] else "-")
    out = Console(width=None if sys.stdout.isatty() else 160)
    out.print(t)
    if p["linear_instructions_per_mac"]:
        out.print(f"matrix products: {p['linear_instructions_per_mac']:.2f} instructions per MAC; sampling and "
                  f"printing: {p['main_loop_instructions_per_token']:,.0f} instructions per token (not included above)")
    if p.get("estimated_tokens_per_s"):
        out.print(f"[bold]estimated[/] {p['estimated_tokens_per_s']:,.1f} tokens/s — {p['estimate_basis']}")
    elif p.get("estimate_basis"):
        out.print(f"[bold]estimated[/] cycles only ({p['estimate_basis']}; this target has no clock)")


@app.command()
def run(project: Path = typer.Argument(..., help="output folder of `slmc compile`"),
        steps: int = typer.Option(256, "--steps", "-n", help="positions processed, prompt included"),
        temperature: float = typer.Option(0.0, "--temperature"),
        top_p: float = typer.Option(0.9, "--top-p"),
        seed: int = typer.Option(42, "--seed"),
        prompt: Optional[str] = typer.Option(None, "--prompt", help="text, encoded with BOS first"),
        prompt_ids: Optional[str] = typer.Option(None, "--prompt-ids", help="ids fed exactly as given"),
        ids: bool = typer.Option(False, "--ids", help="print generated ids instead of text"),
        as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
        dump_logits: Optional[Path] = typer.Option(None, "--dump-logits", help="float32 logits, one row per position"),
        profile: bool = typer.Option(False, "--profile", help="exact instruction counts per operator (emulated targets)"),
        inputs: Optional[Path] = typer.Option(None, "--inputs", help="graphs: .npz with input_0, input_1, ..."),
        save: Optional[Path] = typer.Option(None, "--save", help="graphs: write output_0, ... to this .npz")) -> None:
    """Build (if needed) and run a compiled model on its target."""
    try:
        if inputs is not None or save is not None:
            _run_graph(project, inputs, save, as_json)
            return
        _run(project, steps, temperature, top_p, seed, prompt, prompt_ids, ids, as_json, dump_logits, profile)
    except SlmcError as e:
        _fail(e)


def _run_graph(project: Path, inputs: Optional[Path], save: Optional[Path], as_json: bool) -> None:
    """A compiled ONNX graph: inputs from an .npz (input_i bound to the i-th graph input), outputs to one."""
    import numpy as np

    from slmc.driver import run_graph

    rep_path = project / "report.json"
    if not rep_path.exists():
        raise SlmcError(f"{project} is not an slmc output folder (no report.json)", "run `slmc compile MODEL -o DIR` first")
    if "graph_io" not in json.loads(rep_path.read_text()):
        raise SlmcError(f"{project} holds a language model, not a graph", "run it with --prompt or --prompt-ids")
    if inputs is None:
        raise SlmcError("--save needs --inputs", "e.g. slmc run DIR --inputs in.npz --save out.npz")
    try:
        with np.load(inputs) as f:
            feeds = {k: f[k] for k in f.files}
    except (OSError, ValueError) as e:
        raise SlmcError(f"cannot read inputs '{inputs}': {e}", "give an .npz written by numpy.savez") from None
    outs, seconds = run_graph(project, feeds)
    if save is not None:
        np.savez(save, **outs)
    if as_json:
        print(json.dumps(dict(outputs={k: dict(dtype=str(v.dtype), shape=list(v.shape)) for k, v in outs.items()},
                              seconds=seconds, saved=str(save) if save else None)))
    else:
        for k, v in outs.items():
            print(f"{k}: {v.dtype}{list(v.shape)}" + (f" -> {save}" if save else f" {np.array2string(v.reshape(-1)[:8])}"))


@app.command()
def generate(model: Path = typer.Argument(...),
             target: str = typer.Option("host", "-t", "--target"),
             numerics: str = typer.Option("fp32", "-q", "--quant"),
             steps: int = typer.Option(256, "--steps", "-n"),
             temperature: float = typer.Option(0.0, "--temperature"),
             top_p: float = typer.Option(0.9, "--top-p"),
             seed: int = typer.Option(42, "--seed"),
             prompt: Optional[str] = typer.Option(None, "--prompt"),
             prompt_ids: Optional[str] = typer.Option(None, "--prompt-ids"),
             tokenizer: Optional[Path] = typer.Option(None, "--tokenizer"),
             ids: bool = typer.Option(False, "--ids")) -> None:
    """Compile into a temporary folder and run, for people in a hurry."""
    tmp = Path(tempfile.mkdtemp(prefix="slmc-"))
    try:
        _compile(model, target, numerics, tmp / "out", None, tokenizer)
        _run(tmp / "out", steps, temperature, top_p, seed, prompt, prompt_ids, ids, False, None)
    except SlmcError as e:
        _fail(e)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@app.command()
def report(project: Path = typer.Argument(..., help="output folder of `slmc compile`"),
           out: Optional[Path] = typer.Option(None, "-o", "--out", help="where to write (default: PROJECT)"),
           profile: Optional[Path] = typer.Option(None, "--profile",
                                                  help="JSON of `slmc run --json` (default: PROJECT/profile.json if present)")) -> None:
    """Draw the memory plan and per-operator costs; write them with the numbers into report.html."""
    from slmc.report import write_report

    try:
        files = write_report(project, out, profile)
    except SlmcError as e:
        _fail(e)
        return
    err.print(f"wrote {files.html}, {files.memory_plan.name}, {files.ops.name} "
              f"(operator costs: {'instructions from ' + files.profile if files.profile else 'MACs'})", highlight=False)


@app.command()
def targets() -> None:
    """List the built-in targets and their facts."""
    from rich.table import Table

    from slmc.targets import TARGETS

    t = Table("target", "ISA", "features", "SRAM", "flash", "clock", "runs on", "counts with", "cycle model",
              "description")
    for tg in TARGETS.values():
        t.add_row(tg.name, tg.isa, ",".join(sorted(tg.features)) or "-", f"{tg.sram_bytes:,}" if tg.sram_bytes else "-",
                  f"{tg.flash_bytes:,}" if tg.flash_bytes else "-",
                  f"{tg.clock_hz / 1e6:g} MHz" if tg.clock_hz else "-",
                  " ".join(tg.emulator.qemu[:3]) if tg.emulator else "this machine",
                  tg.emulator.counter if tg.emulator else "-", tg.cycle_model or "-", tg.description)
    Console(width=None if sys.stdout.isatty() else 200).print(t)


@app.command()
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
        cfg = resolve_model(model, heads)
        res = run_sim(cfg, counts, target, mode, fanin, classifier, context, prompt)
        if plot_file:
            plot(res, plot_file)
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


@app.command()
def dvfs(model: Path = typer.Argument(..., help="llama2.c .bin, HuggingFace Llama folder, or .onnx"),
         target: str = typer.Option("rp2350", "-t", "--target", help="rp2350 (both ISAs)"),
         numerics: str = typer.Option("q8", "-q", "--quant", help="fp32 | q8 | int8"),
         latency_ms: Optional[float] = typer.Option(None, "--latency-ms", help="latency budget per token "
                                                    "(default: the race-to-idle latency)"),
         energy_uj: Optional[float] = typer.Option(None, "--energy-uj", help="energy budget per token"),
         as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
         plot: Optional[Path] = typer.Option(None, "--plot", help="PNG of the energy-latency Pareto front"),
         unofficial: bool = typer.Option(False, "--unofficial", help="also voltages outside 1.05-1.16 V (slower)"),
         steps: int = typer.Option(8, "--steps", "-n", help="decode steps counted per ISA")) -> None:
    """Choose voltage, clock and ISA per layer part on the RP2350 (MODELLED energy, estimated cycles)."""
    from slmc.sim.dvfs import build_groups, profile_model, solve
    from slmc.sim.dvfs import plot as draw
    from slmc.sim.power import PowerModel

    try:
        if target != "rp2350":
            raise SlmcError(f"dvfs knows the RP2350 only, not '{target}'", "use -t rp2350")
        if numerics not in NUMERICS:
            raise SlmcError(f"unknown numerics '{numerics}'", f"use -q one of {', '.join(NUMERICS)}")
        if latency_ms is not None and energy_uj is not None:
            raise SlmcError("--latency-ms and --energy-uj both given", "give one budget")
        if (latency_ms is not None and latency_ms <= 0) or (energy_uj is not None and energy_uj <= 0):
            raise SlmcError("budgets must be positive", "e.g. --latency-ms 20")
        if steps <= 0:
            raise SlmcError(f"--steps {steps} must be positive", "e.g. --steps 8")
        with _progress() as p:
            task = p.add_task("profiling", total=None)
            profiles = profile_model(model, numerics, steps, lambda s: p.update(task, description=s))
            p.update(task, description="scheduling")
            res = solve(build_groups(profiles), PowerModel(), latency_s=None if latency_ms is None else latency_ms / 1e3,
                        energy_j=None if energy_uj is None else energy_uj / 1e6, unofficial=unofficial)
        if plot is not None:
            draw(res, plot)
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
                  "flash" if s["memory_bound"] else "compute")
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


def main() -> None:
    app()


if __name__ == "__main__":
    main()
