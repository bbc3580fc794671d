"""`slmc run --json/--profile` on an emulated target: run with an exact instruction counter, then
turn the counts into instructions per token, a per-operator breakdown, and an ESTIMATED speed at
the target's clock (cycle model of targets/cycles.py, plus weights streamed from flash where the
target says how fast flash reads)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

from slmc.errors import SlmcError
from slmc.output import add_files
from slmc.targets import Target
from slmc.targets.cycles import MODELS
from slmc.toolchain.count import Counts, code_map, per_op
from slmc.toolchain.events import RunResult

LINEAR_OPS = ("linear", "linear_q8", "linear_i8")


def count_run(project: Path, target: Target, rep: dict, args: list[str], on_token: Callable[[int], None],
              mix_steps: int = 1) -> tuple[RunResult, dict]:
    """Runs the built program under the target's exact counter; returns its events and the profile."""
    from slmc.codegen.project import MAP_MCU
    from slmc.toolchain.build import build

    if target.emulator is None:
        raise SlmcError("instruction counts need an emulated target", "compile with -t cortex-m33, rv32imac, rp2350-...")
    elf = build(project)
    code = code_map(elf, project / MAP_MCU, target)
    mix = None
    if target.emulator.counter == "unicorn":
        from slmc.toolchain.unicorn_run import run_unicorn

        res, counts = run_unicorn(target, elf, code, args, on_token)
    else:
        from slmc.toolchain.qemu_gdb import run_qemu_gdb
        from slmc.toolchain.unicorn_run import run_unicorn

        res, counts = run_qemu_gdb(target, elf, code, args, on_token)
        try:  # the instruction mix for the cycle estimate, from the first decode steps
            mix = None if target.cores else run_unicorn(target, elf, code, args, lambda t: None,  # Unicorn has no harts
                                                        max_decode_calls=mix_steps)[1]
        except SlmcError:
            mix = None  # code Unicorn cannot run (Zb* extensions): no cycle estimate
    prof = summarize(counts, rep, target, mix)
    if target.cores:  # per-core counts of a multi-core build (toolchain/cluster_counts.py)
        from slmc.toolchain.cluster_counts import cluster_profile

        prof["cluster"] = cluster_profile(res.stats, rep, prof)
    try:  # beside the project for `slmc report` (output.py's rules: not over a profile.json of the user's)
        add_files(project, {"profile.json": (json.dumps(prof, indent=1) + "\n").encode()}, "the project")
    except SlmcError:
        pass  # a folder slmc may not write into: the counts are still returned and printed
    return res, prof


def summarize(counts: Counts, rep: dict, target: Target, mix: Counts | None = None) -> dict:
    ops = rep["ops"]
    steps = len(counts.decode_calls())
    if steps == 0:
        raise SlmcError("the run made no decode step, so there is nothing to count per token", "run more --steps")
    instr, cycles, pro_i, pro_c = per_op(counts, ops)
    if mix is not None:  # scale each operator by its cycles per instruction in the mix run
        m_instr, m_cyc, m_pro_i, m_pro_c = per_op(mix, ops)
        cycles = [i * c / mi if c is not None and mi else None for i, c, mi in zip(instr, m_cyc, m_instr)]
        pro_c = pro_i * m_pro_c / m_pro_i if m_pro_c is not None and m_pro_i else None
    total = pro_i + sum(instr)
    rows = []
    for o, n, c in zip(ops, instr, cycles):
        rows.append(dict(name=o["name"], op=o["op"], kernel=o["kernel"], macs=o["macs"], instructions=n / steps,
                         instructions_total=n, share=n / total if total else 0.0,
                         estimated_cycles=c / steps if c is not None else None))
    lin_i = sum(r["instructions_total"] for r in rows if r["op"] in LINEAR_OPS)
    lin_m = sum(r["macs"] for r in rows if r["op"] in LINEAR_OPS) * steps
    prof = dict(
        target=target.name, counter=counts.counter, decode_steps=steps,
        instructions_per_token=total / steps, instructions_total=total,
        prologue_instructions_per_token=pro_i / steps,
        main_loop_instructions_per_token=counts.main_instructions / max(1, len(counts.calls) - 1),
        prefill=dict(calls=sum(1 for c in counts.calls if c.graph == "prefill"),
                     instructions=sum(c.instructions for c in counts.calls if c.graph == "prefill")),
        program_instructions=counts.total_instructions,
        linear_instructions_per_mac=lin_i / lin_m if lin_m else None,
        tokens_per_s=None,  # measured speed means nothing on an emulator; see estimated_tokens_per_s
        ops=rows,
    )
    have = pro_c is not None and None not in cycles
    prof.update(estimate(target, rep, (pro_c + sum(cycles)) / steps if have else None,  # type: ignore[operator]
                         [(r["name"], r["estimated_cycles"]) for r in rows] if have else None,
                         pro_c / steps if have else 0.0))  # type: ignore[operator]
    if counts.staging_instructions is not None and rep.get("staging"):
        # per position: every model call (a prompt position too) runs its copies; none of it in the counts above
        prof["staging_copy_instructions_per_token"] = counts.staging_instructions / max(1, len(counts.calls))
    return prof


def unread_expert_bytes(rep: dict) -> float:
    """A mixture of experts reads only the experts its tokens choose: in place, top_k of every layer's per
    token (the rest are not read); through an expert cache none from flash in the forward pass (the cache's
    copies are the run's expert_bytes_loaded, priced by sim/experts.py)."""
    ex = rep.get("experts")
    if not ex:
        return 0.0
    per_expert = ex["all_experts_bytes"] / (ex["count"] * ex["layers"])
    return ex["all_experts_bytes"] - (0 if ex["slots"] else ex["top_k"] * ex["layers"] * per_expert)


def flash_read_bytes(rep: dict) -> float:
    """The weight bytes a decode step reads from flash: report.json's `weights_read_per_step.flash` (every byte of a
    matrix, one row per token row of a table read by rows: RoPE's cos/sin, untied embeddings, learned positions),
    or for a report without it, every weight byte not copied to SRAM; less the experts a token does not read."""
    read = rep.get("weights_read_per_step")
    if read is not None:
        flash = read["flash"]
    else:
        flash = rep.get("weights_bytes", 0) - (rep.get("weights_sram_bytes") or 0)
    return flash - unread_expert_bytes(rep)


def estimate(target: Target, rep: dict, cycles_per_token: float | None,
             op_cycles: list[tuple[str, float]] | None = None, prologue_cycles: float = 0.0) -> dict:
    """Estimated cycles and tokens/s: compute at the target's clock, plus (where the target gives a
    flash read rate and the weights sit in flash) the weight bytes a token reads from flash read once
    per token through a cache far smaller than the weights, not overlapped with compute; in a build that
    DMA-stages its flash matrices (report.json's `staging`) and given each operator's cycles (`op_cycles`,
    in order, per token), those bytes overlap the compute (toolchain/staged_estimate.py)."""
    model = MODELS.get(target.cycle_model)
    out: dict = dict(estimated_cycles_per_token=cycles_per_token, estimated_tokens_per_s=None,
                     estimate_basis=None)
    if cycles_per_token is None or model is None:
        return out
    basis = [f"ESTIMATE from exact instruction counts and the {model.description} cycle model"]
    if target.clock_hz:
        seconds = cycles_per_token / target.clock_hz
        weights_in = rep.get("memory", {}).get("weights_in", "flash")
        rate = target.flash.read_bytes_per_s if target.flash else None
        if rate and weights_in.startswith("flash"):
            in_sram = rep.get("weights_sram_bytes") or 0
            flash = flash_read_bytes(rep)
            staging = rep.get("staging")
            out["estimated_flash_bytes_per_token"] = flash
            if staging and op_cycles is not None:
                from slmc.toolchain.staged_estimate import staged_estimate

                st = staged_estimate(op_cycles, prologue_cycles, staging, target.clock_hz, rate,
                                     max(0.0, flash - staging["bytes_per_step"]))
                seconds = st["seconds"]
                out["estimated_flash_seconds_per_token"] = flash / rate
                out["estimated_flash_stall_seconds_per_token"] = st["stall_seconds"] + st["in_place_flash_seconds"]
                # the same counts with the flash read after the compute, as an unstaged build is estimated
                out["estimated_tokens_per_s_not_overlapped"] = 1.0 / (cycles_per_token / target.clock_hz + flash / rate)
                basis.append(st["basis"] + (f" ({in_sram:,} B of weights copied to SRAM at boot)" if in_sram else ""))
            else:
                stall = flash / rate
                seconds += stall
                out["estimated_flash_seconds_per_token"] = stall
                out["estimated_flash_stall_seconds_per_token"] = stall
                basis.append(f"plus the {flash:,.0f} weight bytes a token reads from flash (tables one row), read once "
                         f"per token at {rate / 1e6:g} MB/s"
                         + (f" ({in_sram:,} B of weights copied to SRAM at boot and read there)" if in_sram else ""))
        out["estimated_tokens_per_s"] = 1.0 / seconds
        basis.append(f"at {target.clock_hz / 1e6:g} MHz")
    out["estimate_basis"] = ", ".join(basis)
    return out
