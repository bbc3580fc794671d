"""`make demo`: compile the bundled story model, write a story on the host and (when the cross
toolchain is there) on an emulated RP2350 Cortex-M33, and print the numbers that matter."""

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
from slmc.frontend.tokenizer import TextStream, load_tokenizer
from slmc.targets import get_target
from slmc.toolchain.build import build
from slmc.toolchain.run import llm_args, run_program

ROOT = Path(__file__).resolve().parents[2]
DEFAULT = ROOT / "models" / "default" / "model.bin"
PROMPT = "Once upon a time"
MCU = "rp2350-arm"
console = Console()


def _kib(n: int) -> str:
    return f"{n / 1024:,.0f} KiB"


def _story(project: Path, rep: dict, steps: int, count: bool) -> tuple[float | None, dict]:
    """Stream a story from the built program; on an emulated target also count its instructions."""
    target = get_target(rep["target"])
    tok = load_tokenizer(project / rep["tokenizer"]) if rep.get("tokenizer") else None
    ids = tok.encode(PROMPT, bos=True) if tok else [1]
    stream = TextStream(tok, ids[-1]) if tok else None
    console.print(f"[bold]{tok.decode(ids) if tok else ''}[/]", end="")

    def on_token(t: int) -> None:
        console.print(stream.push(t) if stream else f" {t}", end="", highlight=False)

    args = llm_args(steps, 0.8, 0.9, 7, ids, None)
    counts: dict = {}
    with console.status(f"building for {target.name}"):
        binary = build(project)
    if count:
        from slmc.toolchain.profile import count_run

        res, counts = count_run(project, target, rep, args, on_token)
    else:
        res = run_program(target, binary, args, on_token)
    console.print("\n")
    tps = res.stats["positions"] / res.stats["seconds"] if res.stats.get("seconds") else None
    return tps, counts


def main() -> int:
    out = ROOT / "out" / "demo"
    model = None
    if not DEFAULT.exists():
        console.print("[yellow]no bundled model: using a seeded random-weight model[/]")
        model = random_decoder(SHAPES["stories260K"], seed=0)
    mcu_ready = all(shutil.which(t) for t in (get_target(MCU).cc, "qemu-system-arm"))
    try:
        builds = {}
        for name in ["host"] + ([MCU] if mcu_ready else []):
            t0 = time.perf_counter()
            with console.status(f"compiling for {name}"):
                builds[name] = compile_model(CompileOptions(DEFAULT, name, "q8", out / name), model=model).to_json()
            console.print(f"compiled {DEFAULT.name} (q8) for {name} in {time.perf_counter() - t0:.2f} s -> "
                          f"{(out / name).relative_to(ROOT)}")
        console.rule("[bold]host")
        host_tps, _ = _story(out / "host", builds["host"], 200, count=False)
        mcu_counts: dict = {}
        if mcu_ready:
            console.rule(f"[bold]{MCU}: Cortex-M33, emulated, counting every instruction")
            _, mcu_counts = _story(out / MCU, builds[MCU], 64, count=True)
        else:
            console.print("[yellow]no arm-none-eabi-gcc/qemu: run `make toolchains` to see the story on the MCU[/]")
    except SlmcError as e:
        console.print(f"[bold red]error:[/] {e}")
        return 2
    _summary(builds, host_tps, mcu_counts)
    return 0


def _summary(builds: dict, host_tps: float | None, counts: dict) -> None:
    t = Table(title="slmc demo: the bundled story model, q8", title_justify="left")
    t.add_column("")
    for name in builds:
        t.add_column(name, justify="right")
    rows = {"arena (activations, scratch)": lambda r: _kib(r["arena_bytes"] - r["kv_cache_bytes"]),
            "KV cache": lambda r: _kib(r["kv_cache_bytes"]) + f" ({r['config']['seq_len']} positions)",
            "weights": lambda r: _kib(r["weights_bytes"]) + (f" ({_kib(r['weights_sram_bytes'])} copied to SRAM)"
                                                            if r.get("weights_sram_bytes") else ""),
            "SRAM used / capacity": lambda r: (f"{_kib(r['memory']['sram']['used'])} / {_kib(r['memory']['sram']['capacity'])}"
                                               if r.get("memory") else "-"),
            "MACs per token": lambda r: f"{r['macs_per_token']:,}"}
    for label, fn in rows.items():
        t.add_row(label, *(fn(r) for r in builds.values()))
    speed = [f"{host_tps:,.0f} tokens/s (measured)" if host_tps else "-"]
    instr = ["-"]
    if MCU in builds:
        instr.append(f"{counts['instructions_per_token']:,.0f}" if counts.get("instructions_per_token") else "-")
        est = counts.get("estimated_tokens_per_s")
        speed.append(f"{est:,.1f} tokens/s (ESTIMATE at 150 MHz)" if est else "-")
    t.add_row("instructions per token (exact)", *instr)
    t.add_row("speed", *speed)
    console.print(t)
    if counts.get("estimate_basis"):
        console.print(f"[dim]estimate: {counts['estimate_basis']}[/]")


if __name__ == "__main__":
    sys.exit(main())
