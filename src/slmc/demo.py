"""`make demo`: compile the bundled story model, write a story on the host (and on an emulated
Cortex-M33 when the cross toolchain is there), and print the numbers that matter."""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from slmc.driver import CompileOptions, compile_model
from slmc.errors import SlmcError
from slmc.frontend.random_model import SHAPES, random_decoder
from slmc.toolchain.build import build
from slmc.toolchain.run import llm_args, run_events

ROOT = Path(__file__).resolve().parents[2]
DEFAULT = ROOT / "models" / "default"
PROMPT = "Once upon a time"
console = Console()


def _story(project: Path, steps: int, tok, prompt_ids: list[int]) -> tuple[str, float | None]:
    from slmc.frontend.tokenizer import TextStream

    binary = build(project)
    stream = TextStream(tok, prompt_ids[-1]) if tok else None
    console.print(f"[bold]{tok.decode(prompt_ids) if tok else ''}[/]", end="")

    def on_token(t: int) -> None:
        console.print(stream.push(t) if stream else f" {t}", end="", highlight=False)

    res = run_events([str(binary), *llm_args(steps, 0.8, 0.9, 7, prompt_ids, None)], on_token)
    console.print()
    tps = res.stats["positions"] / res.stats["seconds"] if res.stats.get("seconds") else None
    return tok.decode(res.ids) if tok else "", tps


def main() -> int:
    out = ROOT / "out" / "demo"
    model_path = DEFAULT / "model.bin"
    model = None
    if not model_path.exists():
        console.print("[yellow]no bundled model yet: using a seeded random-weight model[/]")
        model = random_decoder(SHAPES["stories260K"], seed=0)
    try:
        t0 = time.perf_counter()
        with console.status("compiling for the host"):
            rep = compile_model(CompileOptions(model_path, "host", "q8", out / "host"), model=model)
        console.print(f"compiled {model_path.name if model is None else 'random model'} for host (q8) in "
                      f"{time.perf_counter() - t0:.2f} s -> {out / 'host'}")
        tok = None
        if rep.get("tokenizer"):
            from slmc.frontend.tokenizer import load_tokenizer

            tok = load_tokenizer(out / "host" / rep["tokenizer"])
        ids = tok.encode(PROMPT, bos=True) if tok else [1]
        console.rule("host")
        _, tps = _story(out / "host", 200, tok, ids)
        table = Table("", "host")
        table.add_row("arena (activations + KV cache)", f"{rep['arena_bytes']:,} B")
        table.add_row("  of which KV cache", f"{rep['kv_cache_bytes']:,} B")
        table.add_row("weights (read-only)", f"{rep['weights_bytes']:,} B")
        table.add_row("MACs per token", f"{rep['macs_per_token']:,}")
        table.add_row("tokens/s", f"{tps:,.0f}" if tps else "-")
        console.print(table)
    except SlmcError as e:
        console.print(f"[bold red]error:[/] {e}")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
