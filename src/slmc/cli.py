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
             tokenizer: Optional[Path]) -> dict:
    from slmc.driver import CompileOptions, compile_model

    if numerics not in NUMERICS:
        raise SlmcError(f"unknown numerics '{numerics}'", f"use -q one of {', '.join(NUMERICS)}")
    with _progress() as p:
        task = p.add_task("compiling", total=None)
        return compile_model(CompileOptions(model, target, numerics, out, prefill_chunk, tokenizer),
                             lambda s: p.update(task, description=s))


@app.command()
def compile(model: Path = typer.Argument(..., help="llama2.c .bin, HuggingFace Llama folder, or .onnx"),
            target: str = typer.Option("host", "-t", "--target", help="see `slmc targets`"),
            numerics: str = typer.Option("fp32", "-q", "--quant", help="fp32 | q8"),
            out: Path = typer.Option(Path("out"), "-o", "--out", help="output folder (replaced atomically)"),
            prefill_chunk: Optional[int] = typer.Option(None, "--seq", help="tokens per prompt step (0: none)"),
            tokenizer: Optional[Path] = typer.Option(None, "--tokenizer", help="tokenizer.model or tokenizer.bin")) -> None:
    """Compile MODEL into a C project in OUT, with report.json."""
    try:
        rep = _compile(model, target, numerics, out, prefill_chunk, tokenizer)
    except SlmcError as e:
        _fail(e)
        return
    err.print(f"wrote {out}/: arena {rep['arena_bytes']:,} B (lower bound {rep['lower_bound_bytes']:,}), "
              f"weights {rep['weights_bytes']:,} B, KV cache {rep['kv_cache_bytes']:,} B, "
              f"{rep['macs_per_token']:,} MACs/token", highlight=False)


def _parse_ids(s: str) -> list[int]:
    try:
        return [int(x) for x in s.replace(" ", "").split(",") if x != ""]
    except ValueError:
        raise SlmcError(f"--prompt-ids '{s}' is not a comma-separated list of integers", "e.g. --prompt-ids 1,450,29") from None


def _run(project: Path, steps: int, temperature: float, top_p: float, seed: int, prompt: Optional[str],
         prompt_ids: Optional[str], ids: bool, as_json: bool, dump_logits: Optional[Path]) -> None:
    from slmc.toolchain.build import build
    from slmc.toolchain.run import llm_args, run_events

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
    binary = build(project)
    stream_text = tok is not None and not ids and not as_json
    prev = [pids[-1] if pids else 1]
    if stream_text and pids:
        sys.stdout.write(tok.decode(pids))
    def on_token(t: int) -> None:
        if stream_text:
            sys.stdout.write(tok.piece(prev[0], t))
            sys.stdout.flush()
        prev[0] = t

    res = run_events([str(binary.resolve()), *llm_args(steps, temperature, top_p, seed, pids, dump_logits)], on_token)
    tps = res.stats.get("positions", 0) / res.stats["seconds"] if res.stats.get("seconds") else None
    if as_json:
        print(json.dumps(dict(ids=res.ids, tokens_per_s=tps, target=rep["target"], positions=int(res.stats.get("positions", 0)),
                              text=tok.decode(res.ids) if tok else None)))
    elif ids or tok is None:
        print(" ".join(map(str, res.ids)))
    else:
        print()
        if tps:
            err.print(f"[dim]{tps:,.0f} tokens/s on {rep['target']}[/]")


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
        dump_logits: Optional[Path] = typer.Option(None, "--dump-logits", help="float32 logits, one row per position")) -> None:
    """Build (if needed) and run a compiled model on its target."""
    try:
        _run(project, steps, temperature, top_p, seed, prompt, prompt_ids, ids, as_json, dump_logits)
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
    tmp = Path(tempfile.mkdtemp(prefix="slmc-"))
    try:
        _compile(model, target, numerics, tmp / "out", None, tokenizer)
        _run(tmp / "out", steps, temperature, top_p, seed, prompt, prompt_ids, ids, False, None)
    except SlmcError as e:
        _fail(e)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@app.command()
def targets() -> None:
    """List the built-in targets and their facts."""
    from rich.table import Table

    from slmc.targets import TARGETS

    t = Table("target", "ISA", "compiler", "SRAM", "flash", "clock", "description")
    for tg in TARGETS.values():
        t.add_row(tg.name, tg.isa, tg.cc, f"{tg.sram_bytes:,}" if tg.sram_bytes else "-",
                  f"{tg.flash_bytes:,}" if tg.flash_bytes else "-",
                  f"{tg.clock_hz / 1e6:g} MHz" if tg.clock_hz else "-", tg.description)
    Console().print(t)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
