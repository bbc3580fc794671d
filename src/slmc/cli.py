"""The `slmc` command."""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer
from rich.console import Console

from slmc.cli_systems import register as register_systems
from slmc.cli_sweep import register as register_sweep
from slmc.cli_run import _run, _run_graph
from slmc.cli_safety import NUMERICS, SafeTyper, _fail, _progress, check_sampling, err, input_path
from slmc.errors import SlmcError

if TYPE_CHECKING:
    from slmc.report.compile_report import ChipsManifest, CompileReport

app = SafeTyper(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
               help="Compile small language models to static-memory C, and run them.")


def _compile(model: Path, target: str, numerics: str, out: Path, prefill_chunk: Optional[int],
             tokenizer: Optional[Path], context: Optional[int] = None, kv_cache: Optional[str] = None,
             chips: int = 1, fan_in: int = 2, mem: Optional[str] = None, mode: str = "decode",
             cores: Optional[int] = None, engine: Optional[str] = None, weights_sram: str = "auto",
             memory_sharing: str = "on", dump_dir: Optional[Path] = None,
             batch: Optional[int] = None, expert_slots: Optional[int] = None,
             expert_prefetch: str = "lru", onnx_convention: str = "auto", expert_routing: str = "router",
             expert_predictor: Optional[Path] = None, batch_rows: Optional[int] = None) -> CompileReport | ChipsManifest:
    from slmc.driver import CompileOptions, compile_model

    if numerics not in NUMERICS:
        raise SlmcError(f"unknown numerics '{numerics}'", f"use -q one of {', '.join(NUMERICS)}")
    if weights_sram not in ("auto", "boot", "off"):
        raise SlmcError(f"unknown --weights-sram '{weights_sram}'", "use --weights-sram auto, boot or off")
    input_path(model, "model", folder_ok=True)
    input_path(tokenizer, "--tokenizer")
    input_path(expert_predictor, "--expert-predictor")
    if prefill_chunk is not None and prefill_chunk < 0:
        raise SlmcError(f"--seq {prefill_chunk} is negative", "give the tokens per prompt step, or 0 for none")
    with _progress() as p:
        task = p.add_task("compiling", total=None)
        return compile_model(CompileOptions(model, target, numerics, out, prefill_chunk, tokenizer, context,
                                            kv_cache=kv_cache, chips=chips, fan_in=fan_in,
                                            mem=mem, mode=mode, cores=cores, engine=engine, weights_sram=weights_sram,
                                            memory_sharing=memory_sharing, dump_dir=dump_dir, batch=batch,
                                            batch_rows=batch_rows,
                                            expert_slots=expert_slots, expert_prefetch=expert_prefetch,
                                            onnx_convention=onnx_convention, expert_routing=expert_routing,
                                            expert_predictor=expert_predictor),
                             lambda s: p.update(task, description=s))


@app.command()
def compile(model: Path = typer.Argument(..., help="llama2.c .bin, HuggingFace Llama folder, or .onnx"),
            target: str = typer.Option("host", "-t", "--target", help="see `slmc targets`"),
            numerics: str = typer.Option("fp32", "-q", "--quant", help="fp32 | q8"),
            out: Path = typer.Option(Path("out"), "-o", "--out", help="output folder: new, empty, or written by slmc (only its own files are replaced)"),
            prefill_chunk: Optional[int] = typer.Option(None, "--seq", help="tokens per prompt step (0: none)"),
            tokenizer: Optional[Path] = typer.Option(None, "--tokenizer", help="tokenizer.model or tokenizer.bin"),
            context: Optional[int] = typer.Option(None, "--context", help="positions the KV cache holds "
                                                  "(default: the model's, or as many as fit the target's SRAM)"),
            kv_cache: Optional[str] = typer.Option(None, "--kv-cache", help="fp32 | fp16 | int8 storage of the KV cache "
                                                   "(default: fp32, or fp16 where fp32 does not fit the target's SRAM)"),
            weights_sram: str = typer.Option("auto", "--weights-sram", help="auto: where weights stream from flash, "
                                             "copy as many as the free SRAM holds at boot, and on the RP2350 DMA the rest into two "
                                             "staging buffers one product ahead | boot: the boot copy only | off"),
            chips: int = typer.Option(1, "--chips", help="partition over N chips: OUT/chip0..chipN-1 + manifest.json"),
            fan_in: int = typer.Option(2, "--fan-in", "--reduce-fanin", help="fan-in of the chips' hierarchical all-reduce"),
            mem: Optional[str] = typer.Option(None, "--mem", help="resize memory levels, e.g. L1=64KiB,L2=1MiB "
                                              "(see `slmc targets`); plans and tiles across the levels"),
            mode: str = typer.Option("decode", "-m", "--mode", help="decode | prefill (a prompt step over --seq "
                                     "tokens, placed and tiled across the memory levels)"),
            cores: Optional[int] = typer.Option(None, "--cores", help="split the matrix products, attention and "
                                                "norms over N cores (threads on the host, harts under QEMU); "
                                                "default: the serial build"),
            engine: Optional[str] = typer.Option(None, "--engine", help="override the engine assignment, e.g. "
                                                 "linear=npu or linear=cluster; ffn_bits=4 stores the FFN weights on "
                                                 "the NPU at 4 bits (targets with engines: siracusa-like)"),
            memory_sharing: str = typer.Option("on", "--memory-sharing", help="on: an output may lie over the part of "
                                               "an input its kernel has consumed (vMCU) | off: conventional planning"),
            dump_dir: Optional[Path] = typer.Option(None, "--dump-dir", help="write every stage (the model, the graph "
                                                    "after each pass, kernels, memory plan) as text that diffs cleanly"),
            batch: Optional[int] = typer.Option(None, "--batch", help="serve up to B sequences at once: B KV-cache "
                                                "slots, and slmc_step runs a row of each (or a prompt chunk) reading "
                                                "each weight once; `slmc run DIR --prompts FILE`"),
            batch_rows: Optional[int] = typer.Option(None, "--batch-rows", help="with --batch B: the rows one step "
                                                     "runs, 1..B (default B, or fewer where the target's SRAM is short)"),
            expert_slots: Optional[int] = typer.Option(None, "--expert-slots", help="mixture-of-experts models: keep "
                                                       "the experts in flash and cache N of them in SRAM"),
            expert_prefetch: str = typer.Option("lru", "--expert-prefetch", help="the expert cache's policy: lru "
                                                "(recently used experts stay) | none (every use loads) | predictor "
                                                "(lru, and a trained predictor loads the later layers' experts ahead "
                                                "of use: SiDA)"),
            expert_routing: str = typer.Option("router", "--expert-routing", help="with --expert-prefetch predictor: "
                                               "router (the router decides; ids as with every expert resident) | "
                                               "predicted (the predictor's experts replace the router's top-k in the "
                                               "layers it predicts, weighted by the router's renormalised "
                                               "probabilities: no stall, some accuracy cost)"),
            expert_predictor: Optional[Path] = typer.Option(None, "--expert-predictor", help="the predictor's "
                                                            "predictor.safetensors (its predictor.json beside it; "
                                                            "default: the one in the model folder)"),
            onnx_convention: str = typer.Option("auto", "--onnx-convention", help="an ONNX file's meaning where its "
                                                "author's toolchain departs from the ONNX standard: onnx (the declared "
                                                "opset) | deeploy (Deeploy's: a Softmax without axis before opset 13 "
                                                "is over the last axis) | auto (deeploy for files Deeploy's toolchain "
                                                "wrote; report.json's \"onnx\" says which)")) -> None:
    """Compile MODEL into a C project in OUT, with report.json."""
    try:
        rep = _compile(model, target, numerics, out, prefill_chunk, tokenizer, context, kv_cache, chips, fan_in,
                       mem, mode, cores, engine, weights_sram, memory_sharing, dump_dir, batch, expert_slots,
                       expert_prefetch, onnx_convention, expert_routing, expert_predictor, batch_rows)
    except SlmcError as e:
        _fail(e)
        return
    _print_compiled(out, rep)


def _print_compiled(out: Path, rep: CompileReport | ChipsManifest) -> None:
    """What `slmc compile` says on success: the plan's sizes, the fit, notes that change what was asked."""
    from slmc.report.compile_report import ChipsManifest

    if isinstance(rep, ChipsManifest):
        err.print(f"wrote {out}/: {rep.n_chips} chips (fan-in {rep.fan_in}), weights {rep.weights_bytes:,} B in all, "
                  f"{rep.partition['syncs_per_block']} synchronisations per block", highlight=False)
        for note in rep.notes:
            err.print(f"split: {note}", highlight=False)
        return
    shared = rep.shared_lower_bound_bytes
    bound = f"lower bound {rep.lower_bound_bytes:,}" + (f", {shared:,} with memory sharing" if shared != rep.lower_bound_bytes else "")
    err.print(f"wrote {out}/: arena {rep.arena_bytes:,} B ({bound}), "
              f"weights {rep.weights_bytes:,} B, KV cache {rep.kv_cache_bytes:,} B"
              f"{' (' + rep.kv_cache + ')' if rep.kv_cache is not None else ''}, "
              f"{rep.macs_per_token:,} MACs/token", highlight=False)
    mem = rep.memory
    if mem:
        err.print(f"fits {rep.target}: SRAM {mem['sram']['used']:,} of {mem['sram']['capacity']:,} B "
                  f"(margin {mem['sram']['margin']:,}), flash {mem['flash']['used']:,} of {mem['flash']['capacity']:,} B "
                  f"(margin {mem['flash']['margin']:,}); weights in {mem['weights_in']}"
                  + (f" ({rep.weights_sram_bytes:,} B copied to SRAM at boot)" if rep.weights_sram_bytes else "")
                  + (f"; {len(rep.staging['products'])} products' flash matrices ({rep.staging['bytes_per_step']:,} B a "
                     f"token) DMA-staged through 2 x {rep.staging['buffer_bytes']:,} B of SRAM" if rep.staging else ""),
                  highlight=False)
    for note in rep.notes:
        if note.startswith("the KV cache is stored as fp16"):
            err.print(f"note: {note}", highlight=False)
        elif rep.model_seq_len and note.startswith("the KV cache holds "):   # a context cut (stages/fit.py)
            err.print(f"[yellow]note:[/] {note}", highlight=False)
    if rep.levels is not None:
        from slmc.report.levels_table import levels_summary

        err.print(levels_summary(rep.to_json(console=True)), highlight=False)


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
        on: Optional[str] = typer.Option(None, "--on", help="host: run an emulated target's program on this machine "
                                         "(a multi-core build with one thread per core)"),
        prompts: Optional[Path] = typer.Option(None, "--prompts", help="--batch builds: a text file, one prompt per "
                                               "line (each encoded with BOS), run together"),
        prompt_ids_file: Optional[Path] = typer.Option(None, "--prompt-ids-file", help="--batch builds: one "
                                                       "comma-separated id list per line, fed as given"),
        inputs: Optional[Path] = typer.Option(None, "--inputs", help="graphs: .npz with input_0, input_1, ..."),
        save: Optional[Path] = typer.Option(None, "--save", help="graphs: write output_0, ... to this .npz")) -> None:
    """Build (if needed) and run a compiled model on its target."""
    try:
        if inputs is not None or save is not None:
            _run_graph(project, inputs, save, as_json, profile)
            return
        from slmc.cli_batch import batched, run_batch

        if prompts is not None or prompt_ids_file is not None or batched(project):  # many sequences at once
            if dump_logits is not None or profile or on is not None:
                raise SlmcError("--dump-logits, --profile and --on apply to one sequence, not to a --batch build",
                                "omit them (--json gives the counts of a batched run)")
            run_batch(project, steps, temperature, top_p, seed, prompt, prompt_ids, prompts, prompt_ids_file, ids, as_json)
            return
        _run(project, steps, temperature, top_p, seed, prompt, prompt_ids, ids, as_json, dump_logits, profile, on)
    except SlmcError as e:
        _fail(e)


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
    try:
        check_sampling(steps, temperature, top_p, seed)  # before the compile, not after it
    except SlmcError as e:
        _fail(e)
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
    err.print(f"wrote {files.html}, {files.memory_plan.name}, {files.ops.name}{', ' + files.levels.name if files.levels else ''} "
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
    from slmc.targets.levels import levels_of

    lv = Table("target", "level", "bytes", "B/cycle", "latency (cycles)", "DMA to the level above", "linker region",
               title="memory levels, fastest first (`slmc compile --mem LEVEL=SIZE,...` resizes them)")
    for tg in TARGETS.values():
        for i, level in enumerate(levels_of(tg)):
            lv.add_row(tg.name if i == 0 else "", level.name, f"{level.size:,}" if level.size else "unbounded",
                       f"{level.bytes_per_cycle:g}" if level.bytes_per_cycle else "-", str(level.latency_cycles or "-"),
                       ("yes" if level.dma else "no (read in place)") if i else "-", level.memory or "-")
    Console(width=None if sys.stdout.isatty() else 200).print(lv)
    from slmc.targets.engines import engine_rows

    rows = engine_rows(TARGETS.values())
    if rows:
        en = Table("target", "engine", "parameters", title="compute engines (`slmc compile --cores N`, `--engine linear=npu`)")
        for row in rows:
            en.add_row(*row)
        Console(width=None if sys.stdout.isatty() else 200).print(en)


# the system-level studies live in their own module
register_systems(app)
register_sweep(app)


def main() -> None:
    # run as `python -m slmc.cli` this file is __main__: run the app of the imported module, as `slmc` does
    import slmc.cli

    slmc.cli.app()


if __name__ == "__main__":
    main()
