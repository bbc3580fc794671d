"""Exact instruction counts of a batched run (main_batch.c) on an emulated target, per generated token.

The counters of toolchain/count.py find a model call where main calls the model; here that call is
slmc_step_rows (slmc_step with the rows that want logits), so the code map names it as the call to watch. Every
call reads each weight once for all its rows: weight bytes per generated token = weights read per call x calls /
tokens generated (a call whose rows want no logits skips the classifier, but is charged its weights all the same). The estimate
adds, where the target streams weights from flash at a known rate, those bytes' read time to the cycles of
the target's cycle model at its clock (as toolchain/profile.py does for one token per call).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from slmc.errors import SlmcError
from slmc.targets import Target
from slmc.targets.cycles import MODELS
from slmc.toolchain.events import RunResult


def count_batch(project: Path, target: Target, rep: dict, args: list[str]) -> tuple[RunResult, dict]:
    from slmc.codegen.project import MAP_MCU
    from slmc.toolchain.build import build
    from slmc.toolchain.count import code_map
    from slmc.toolchain.elf import symbols
    from slmc.toolchain.unicorn_run import run_unicorn

    elf = build(project)
    syms = symbols(elf, target.tool_prefix)
    code = replace(code_map(elf, project / MAP_MCU, target, syms), decode=syms.address("slmc_step_rows"), prefill=None)
    try:
        res, counts = run_unicorn(target, elf, code, args, lambda t: None)
    except SlmcError:
        if target.emulator is None or target.emulator.counter == "unicorn":
            raise
        from slmc.toolchain.qemu_gdb import run_qemu_gdb  # code Unicorn cannot run (Zb*): no cycle estimate

        res, counts = run_qemu_gdb(target, elf, code, args, lambda t: None)
    generated = int(res.stats.get("generated", 0))
    calls = counts.calls
    instr = sum(c.instructions for c in calls)
    cyc = [s.cycles for c in calls for s in c.segments]
    cycles = sum(cyc) if calls and None not in cyc else None  # type: ignore[arg-type]
    out: dict = dict(counter=counts.counter, step_calls=len(calls), step_instructions=instr,
                     instructions_per_token=instr / generated if generated else None,
                     instructions_per_step=instr / len(calls) if calls else None)
    from slmc.toolchain.profile import flash_read_bytes

    in_flash = flash_read_bytes(rep)  # per step: every matrix byte once, a table's row per row of the step
    read = rep.get("weights_read_per_step")
    step_bytes = read["flash"] + read["sram"] if read is not None else rep.get("weights_bytes", 0)
    out["weight_bytes_per_token"] = step_bytes * len(calls) / generated if generated else None
    out.update(estimate(target, cycles / generated if cycles is not None and generated else None,
                        in_flash * len(calls) / generated if generated else 0.0))
    return res, out


def estimate(target: Target, cycles_per_token: float | None, flash_bytes_per_token: float) -> dict:
    """ESTIMATED cycles and aggregate tokens/s: compute at the clock, plus flash reads not overlapped with it."""
    model = MODELS.get(target.cycle_model)
    out: dict = dict(estimated_cycles_per_token=cycles_per_token, estimated_tokens_per_s=None, estimate_basis=None)
    if cycles_per_token is None or model is None or not target.clock_hz:
        return out
    seconds = cycles_per_token / target.clock_hz
    basis = [f"ESTIMATE from exact instruction counts and the {model.description} cycle model at "
             f"{target.clock_hz / 1e6:g} MHz"]
    rate = target.flash.read_bytes_per_s if target.flash else None
    if rate:
        seconds += flash_bytes_per_token / rate
        out["estimated_flash_seconds_per_token"] = flash_bytes_per_token / rate
        basis.append(f"plus the weights in flash read once per slmc_step call at {rate / 1e6:g} MB/s")
    out["estimated_tokens_per_s"] = 1.0 / seconds
    out["estimate_basis"] = ", ".join(basis)
    return out
