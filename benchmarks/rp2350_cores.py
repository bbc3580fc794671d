"""The RP2350's second core for the matrix rows (issue 21): stories260K built for one core and for both
(`slmc compile --cores 2`), -q q8 --kv-cache int8 on rp2350-arm (two Cortex-M33s; Unicorn has one core, so the
counting run runs each core's share in turn and counts it exactly) and -q int8 on rp2350-riscv (two Hazard3s;
QEMU -smp 2 runs the harts, -smp 1 counts each hart's share).

    .venv/bin/python benchmarks/rp2350_cores.py   # measures, stores results.json["rp2350_cores"], rewrites BENCHMARKS.md

Per build, two runs (`slmc run DIR --steps 256 --json`): *greedy* (`--temperature 0`, from BOS, which stops at
BOS) for the per-operator counts, and *forced* (226 of llama2.c's greedy ids as the prompt, then decoded to
position 256, as benchmarks/kv_int8.py does): every position 0..255 runs the decode step, so the run's model
instructions over its positions are the mean over 0..255 (where BOS ends it earlier, over the positions run).

- instructions: exact (Unicorn on the M33, QEMU's minstret on Hazard3). Critical path of the 2-core build =
  all its instructions - the work of every split operator's shares + their spans (the busiest core's
  share, summed over calls): what runs on core 0 alone (the wrappers, the serial parts) plus, for each
  split, the longer of the two shares. Attention splits too: over KV heads on the M33 (int8 KV cache,
  parallel_attention_i8kv_dsp.c), over heads on Hazard3 (parallel_attention_i.c).
- ESTIMATED cycles: section 7's cycle model (targets/cycles.py) on the instruction mix; the 2-core critical
  path = the build's cycles - (work - span) x the split kernels' cycles per instruction + one fork/join per
  split call (the target's Cluster.fork_join_cycles, ASSUMED). Hazard3's 2-core run has no mix of its own
  (Unicorn has no harts): its cycles per instruction are the 1-core build's, per operator type.
- flash: the weight bytes a token reads from flash (report.json's weights_read_per_step.flash: every byte of
  a matrix not copied to SRAM, one row of RoPE's cos/sin tables) at 37.5 MB/s. The builds DMA-stage the
  flash-resident matrices one product ahead (codegen/stage_plan.py; two SRAM buffers taken from the boot copy), so
  the read overlaps the compute: the ESTIMATE adds only the waits, from a replay of the decode step on the
  forced run's per-operator cycles (critical-path cycles on 2 cores; attention scaled from the tail's positions
  to the mean over the positions run, from the a + b * position fit) plus the few bytes read in place (RoPE's
  rows). The emulated copy (a word loop in slmc_stage.c) is counted apart, not as the cores' instructions.
  Beside them, the same builds with `--weights-sram boot` (boot copy only, flash read in place through XIP
  after the compute, as before): the *unstaged* columns.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "models" / "stories260K"
SLMC = [sys.executable, "-m", "slmc.cli"]
CLOCK_HZ = 150e6
FLASH_BYTES_PER_S = 37.5e6
BUILDS = (("rp2350-arm", "q8", ("--kv-cache", "int8")), ("rp2350-riscv", "int8", ()))


def _json(out: str) -> dict:
    return json.loads(out[:out.rindex("}") + 1])


def _prompt(limit: int = 900) -> str:
    s = "1"
    for i in (SHARED / "greedy_ids_from_bos.txt").read_text().split():
        if len(s) + len(i) + 1 > limit:
            break
        s += f",{i}"
    return s


def _run(proj: Path, *args: str) -> dict:
    r = subprocess.run([*SLMC, "run", str(proj), "--steps", "256", *args, "--json"], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"slmc run {proj}: {r.stderr.strip()[-400:]}")
    return _json(r.stdout)


def _cpi(prof: dict) -> tuple[float, dict[str, float]]:
    """Cycles per instruction of a decode step, and per operator type (the cycle model on the run's mix)."""
    by: dict[str, list[float]] = {}
    for o in prof["ops"]:
        if o["estimated_cycles"] is not None and o["instructions"]:
            c = by.setdefault(o["op"], [0.0, 0.0])
            c[0] += o["estimated_cycles"]
            c[1] += o["instructions"]
    return prof["estimated_cycles_per_token"] / prof["instructions_per_token"], {k: c / i for k, (c, i) in by.items()}


def _model_instructions(f: dict) -> float:
    return f["prefill"]["instructions"] + f["decode_steps"] * f["instructions_per_token"]


def _build(tmp: Path, target: str, numerics: str, extra: tuple[str, ...], cores: int) -> tuple[Path, dict]:
    out = tmp / f"{target}-{cores}{'-'.join(extra)}"
    more = ("--cores", str(cores)) if cores > 1 else ()
    r = subprocess.run([*SLMC, "compile", str(SHARED / "stories260K.bin"), "-t", target, "-q", numerics, *extra, *more,
                        "-o", str(out)], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"slmc compile {target} --cores {cores}: {r.stderr.strip()[-400:]}")
    return out, json.loads((out / "report.json").read_text())


def _sites(prof: dict, rep: dict) -> list[dict]:
    return [s for s in prof["cluster"]["sites"] if s["graph"] == "decode" and s["calls"]]


def _slope(f: dict) -> float:
    """b of a step's instructions a + b * position, from the prompt's total and the decode tail's mean
    (benchmarks/kv_int8.py's fit)."""
    import numpy as np

    n0, n = f["prefill"]["calls"], f["positions"]
    m = np.array([[n0, n0 * (n0 - 1) / 2], [1.0, (n0 + n - 1) / 2]])
    return float(np.linalg.solve(m, [f["prefill"]["instructions"], f["instructions_per_token"]])[1])


def _waits(f: dict, rep: dict, cpi: float, cpi_op: dict[str, float], fork_join: float, sites: list[dict]) -> float:
    """Seconds a token waits for flash in a staged build: the decode step replayed (toolchain/staged_estimate.py)
    on per-operator cycles (the run's instructions at their type's cycles per instruction; on 2 cores each split
    operator's critical path), attention scaled from the tail's mean position to the mean over the positions run,
    plus the bytes still read in place."""
    from slmc.toolchain.profile import flash_read_bytes
    from slmc.toolchain.staged_estimate import staged_estimate

    st = rep.get("staging")
    if not st:
        return flash_read_bytes(rep) / FLASH_BYTES_PER_S
    n0, n = f["prefill"]["calls"], f["positions"]
    att = sum(o["instructions"] for o in f["ops"] if o["op"] in ("attention", "attention_i"))
    scale = 1 - _slope(f) * ((n0 + n - 1) / 2 - (n - 1) / 2) / att if att else 1.0
    adjust: dict[str, float] = {}
    count: dict[str, int] = {}
    for o in f["ops"]:
        count[o["name"]] = count.get(o["name"], 0) + 1
    for s in sites:  # the shares beside the busiest, and a fork/join, per split call (spread over a shared name)
        c = cpi_op.get(s["op"], cpi)
        adjust[s["node"]] = adjust.get(s["node"], 0.0) - (sum(s["core_instructions"]) - s["span"]) / s["calls"] * c \
            + (fork_join if sum(s["core_instructions"][1:]) > 0 else 0)
    ops = [(o["name"], o["instructions"] * cpi_op.get(o["op"], cpi) * (scale if o["op"] in ("attention", "attention_i") else 1)
            + adjust.get(o["name"], 0.0) / count[o["name"]]) for o in f["ops"]]
    prologue = max(0.0, f["instructions_per_token"] - sum(o["instructions"] for o in f["ops"])) * cpi
    e = staged_estimate(ops, prologue, st, CLOCK_HZ, FLASH_BYTES_PER_S, max(0.0, flash_read_bytes(rep) - st["bytes_per_step"]))
    return e["stall_seconds"] + e["in_place_flash_seconds"]


def _unstaged(tmp: Path, target: str, numerics: str, extra: tuple[str, ...], cores: int, fork_join: float,
              cpi: float, cpi_op: dict[str, float]) -> dict:
    """The same build with `--weights-sram boot` (the flash read in place after the compute): its forced run, at
    the staged build's cycles per instruction (the same code but for the staging calls)."""
    from slmc.toolchain.profile import flash_read_bytes

    p, rep = _build(tmp, target, numerics, (*extra, "--weights-sram", "boot"), cores)
    f = _run(p, "--prompt-ids", _prompt())
    t = _model_instructions(f) / f["positions"]
    if cores == 1:
        cyc = t * cpi
    else:
        ops_of = {o["name"]: o["op"] for o in rep["ops"]}
        sites = _sites(f, rep)
        saved = sum((sum(s["core_instructions"]) - s["span"]) * cpi_op.get(ops_of.get(s["node"], ""), cpi) for s in sites)
        forks = sum(s["calls"] for s in sites if sum(s["core_instructions"][1:]) > 0)
        cyc = t * cpi - saved / f["positions"] + forks / f["positions"] * fork_join
    fl = flash_read_bytes(rep) / FLASH_BYTES_PER_S
    return dict(instructions_per_token=t, cycles_per_token=cyc, flash_ms_per_token=1e3 * fl,
                weights_sram_bytes=rep.get("weights_sram_bytes"), ESTIMATED_tokens_per_s=1 / (cyc / CLOCK_HZ + fl),
                same_ids=None, ids=f["ids"])


def measure_target(tmp: Path, target: str, numerics: str, extra: tuple[str, ...]) -> dict:
    from slmc.targets import get_target

    fork_join = get_target(target).engines.cluster.fork_join_cycles
    (p1, rep1), (p2, rep2) = _build(tmp, target, numerics, extra, 1), _build(tmp, target, numerics, extra, 2)
    base = ""
    try:
        g1 = _run(p1, "--temperature", "0")
    except RuntimeError as e:  # a 1-core build the counter cannot attribute (the fused FFN pair, in progress):
        if "attributed" not in str(e):  # the same graph as the --cores build, which does not fuse it
            raise
        base = "--memory-sharing off"
        (p1, rep1) = _build(tmp, target, numerics, (*extra, *base.split()), 1)
        g1 = _run(p1, "--temperature", "0")
    g2 = _run(p2, "--temperature", "0")
    f1, f2 = _run(p1, "--prompt-ids", _prompt()), _run(p2, "--prompt-ids", _prompt())
    cpi1, cpi1_op = _cpi(f1)
    own = f2.get("estimated_cycles_per_token") is not None
    cpi2, cpi2_op = _cpi(f2) if own else (cpi1, cpi1_op)
    n = f2["positions"]
    t1, t2 = _model_instructions(f1) / f1["positions"], _model_instructions(f2) / n
    ops_of = {o["name"]: o["op"] for o in rep2["ops"]}
    sites = _sites(f2, rep2)
    work = sum(sum(s["core_instructions"]) for s in sites) / n
    span = sum(s["span"] for s in sites) / n
    saved_cycles = sum((sum(s["core_instructions"]) - s["span"]) * cpi2_op.get(ops_of.get(s["node"], ""), cpi2)
                       for s in sites) / n
    forks = sum(s["calls"] for s in sites if sum(s["core_instructions"][1:]) > 0) / n
    crit = t2 - work + span
    cyc1, cyc2 = t1 * cpi1, t2 * cpi2 - saved_cycles + forks * fork_join

    def flash(rep: dict) -> float:  # what a token reads from flash: matrices whole, a table's row (profile.py)
        from slmc.toolchain.profile import flash_read_bytes

        return flash_read_bytes(rep) / FLASH_BYTES_PER_S

    fl1, fl2 = flash(rep1), flash(rep2)
    # staged builds: what a token waits for its copies (plus what it still reads in place), not the whole read
    w1 = _waits(f1, rep1, cpi1, cpi1_op, fork_join, [])
    w2 = _waits(f2, rep2, cpi2, cpi2_op, fork_join, [s for s in sites if s["calls"]])
    u1 = _unstaged(tmp, target, numerics, (*extra, *base.split()), 1, fork_join, cpi1, cpi1_op)
    u2 = _unstaged(tmp, target, numerics, extra, 2, fork_join, cpi2, cpi2_op)
    for u in (u1, u2):
        u["same_ids"] = u.pop("ids") == f1["ids"]
    # per operator type, greedy runs: the 1-core build's instructions against the 2-core build's critical path
    # through the operator (its instructions on core 0 outside the shares: the wrapper, and model.c's code
    # counted with it, + the busiest share)
    per: dict[str, list[float]] = {}

    def by_name(prof: dict) -> dict[str, float]:
        out: dict[str, float] = {}
        for o in prof["ops"]:
            out[o["name"]] = out.get(o["name"], 0.0) + o["instructions"]
        return out

    ops1, ops2, gsites = by_name(g1), by_name(g2), _sites(g2, rep2)
    for s in gsites:
        if s["node"] not in ops1:
            continue
        share = 1 / sum(1 for x in gsites if x["node"] == s["node"])  # a name several sites share (quantize_q8)
        work_s = sum(s["core_instructions"]) / s["calls"]
        c = per.setdefault(s["node"].split(".")[-1], [0.0, 0.0, 0.0, 0.0])
        c[0] += ops1[s["node"]] * share
        c[1] += ops2[s["node"]] * share - work_s + s["span"] / s["calls"]
        c[2] += work_s
        c[3] += s["span"] / s["calls"]
    # attention, split over (KV) heads: both cores' instructions and the busiest's, per token over 0..255
    att_ops = ("attention", "attention_i")
    att_sites = [x for x in sites if ops_of.get(x["node"], "") in att_ops]
    att_work = sum(sum(x["core_instructions"]) for x in att_sites) / n
    att_span = sum(x["span"] for x in att_sites) / n
    return dict(target=target, numerics=numerics + (" " + " ".join(extra) if extra else ""),
                one_core_flags=base, same_ids=g1["ids"] == g2["ids"] and f1["ids"] == f2["ids"],
                greedy_positions=g1["positions"],
                positions=n, cycles_per_instruction_from="own run" if own else "the 1-core build",
                fork_join_cycles=fork_join, forks_per_token=forks,
                one_core=dict(instructions_per_token=t1, cycles_per_token=cyc1, flash_ms_per_token=1e3 * fl1,
                              flash_bytes_per_token=fl1 * FLASH_BYTES_PER_S, flash_wait_ms_per_token=1e3 * w1,
                              staging=_staging(rep1, f1), weights_sram_bytes=rep1.get("weights_sram_bytes"),
                              ESTIMATED_tokens_per_s=1 / (cyc1 / CLOCK_HZ + w1),
                              not_overlapped_tokens_per_s=1 / (cyc1 / CLOCK_HZ + fl1), unstaged=u1),
                two_cores=dict(instructions_per_token=t2, critical_path_instructions=crit, split_work=work,
                               split_span=span, cycles_per_token=cyc2, flash_ms_per_token=1e3 * fl2,
                               flash_bytes_per_token=fl2 * FLASH_BYTES_PER_S, flash_wait_ms_per_token=1e3 * w2,
                               staging=_staging(rep2, f2), weights_sram_bytes=rep2.get("weights_sram_bytes"),
                               ESTIMATED_tokens_per_s=1 / (cyc2 / CLOCK_HZ + w2),
                               not_overlapped_tokens_per_s=1 / (cyc2 / CLOCK_HZ + fl2), unstaged=u2),
                attention_split=bool(att_sites), attention_work=att_work, attention_span=att_span,
                sites={k: dict(one_core=v[0], critical=v[1], work=v[2], span=v[3], speedup=v[0] / v[1] if v[1] else None)
                       for k, v in per.items()})


def _staging(rep: dict, f: dict) -> dict | None:
    st = rep.get("staging")
    if not st:
        return None
    return dict(products=len(st["products"]), buffer_bytes=st["buffer_bytes"], bytes_per_step=st["bytes_per_step"],
                copy_instructions_per_token=f.get("staging_copy_instructions_per_token"))


def render(res: dict | None) -> list[str]:
    if not res:
        return []
    out = ["### 11b. The RP2350's second core for the matrix rows and attention (issue 21; `--cores 2`, stories260K)", "",
           "Exact instruction counts (Unicorn on the M33, QEMU on Hazard3), per token, mean over positions 0..255 "
           "(226 of llama2.c's greedy ids as the prompt, decoded to 256; every position runs the decode step). "
           "2 cores: the critical path = what core 0 runs alone + the busiest core's share of every split operator "
           "(matrix products by rows, SwiGLU by elements, the quantizer by groups, attention by KV heads on the M33 and by "
           "heads on Hazard3; RMSNorm and RoPE split only from 128 elements a row, the target's "
           "Cluster.min_split_elements, so stories260K's 64-element ones stay on core 0: split they cost more than "
           "they saved). "
           "ESTIMATED tokens/s at 150 MHz: section 7's cycle model on the critical path, plus a fork/join of "
           f"{res['rows'][0]['fork_join_cycles']} cycles (ASSUMED) per split call, plus the flash term (the weight "
           "bytes a token reads from flash: the matrices not copied to SRAM, one row of RoPE's tables; at 37.5 MB/s). "
           "The builds DMA-stage their flash-resident matrices one product ahead into two SRAM buffers (taken from "
           "the boot copy, so more bytes stay in flash), so the flash term is only the waits: the decode step "
           "replayed on the per-operator cycles (critical path on 2 cores, attention scaled to the mean position), a "
           "copy issued when the product two before it returned, the flash serving one copy at a time "
           "(toolchain/staged_estimate.py), plus RoPE's rows read in place. The emulated copy (a word loop) is counted "
           "apart, not in the instructions. *Unstaged*: the same build with `--weights-sram boot` (flash read in place "
           "after the compute, the figure before staging). Same ids on 1 and 2 cores, staged and unstaged: "
           + ", ".join(f"{r['target']} {'yes' if r['same_ids'] and r['one_core']['unstaged']['same_ids'] and r['two_cores']['unstaged']['same_ids'] else 'NO'}"
                       for r in res["rows"])
           + ". " + "".join(f"The 1-core {r['target']} build is compiled with `{r['one_core_flags']}` (the counter could not "
                            "attribute the plain build's fused FFN pair when this ran; the 2-core build does not fuse it). "
                            for r in res["rows"] if r.get("one_core_flags"))
           + "Reproduce: `python benchmarks/rp2350_cores.py`.", "",
           "| target, numerics | cores | instr / token | critical path | speedup (instr) | ESTIMATED cycles / token "
           "| flash B / token (ms) | staged: buffers, copy instr / token | flash waits ms / token | ESTIMATED tok/s "
           "| unstaged: flash B / token (ms) | unstaged: ESTIMATED tok/s |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]

    def staged(x: dict) -> str:
        st = x.get("staging")
        if not st:
            return "none"
        ci = st["copy_instructions_per_token"]
        return f"2 x {st['buffer_bytes']:,} B, {ci:,.0f}" if ci is not None else f"2 x {st['buffer_bytes']:,} B, -"

    for r in res["rows"]:
        a, b = r["one_core"], r["two_cores"]
        name = f"{r['target']} {r['numerics']}"
        for cores, x, crit, sp in ((1, a, a["instructions_per_token"], 1.0),
                                   (2, b, b["critical_path_instructions"], a["instructions_per_token"] / b["critical_path_instructions"])):
            u = x["unstaged"]
            out.append(f"| {name} | {cores} | {x['instructions_per_token']:,.0f} | {'**' if cores == 2 else ''}{crit:,.0f}"
                       f"{'**' if cores == 2 else ''} | {sp:.2f}x | {x['cycles_per_token']:,.0f} | "
                       f"{x['flash_bytes_per_token']:,.0f} ({x['flash_ms_per_token']:.2f}) | {staged(x)} | "
                       f"{x['flash_wait_ms_per_token']:.3f} | **{x['ESTIMATED_tokens_per_s']:.1f}** | "
                       f"{u['flash_ms_per_token'] * FLASH_BYTES_PER_S / 1e3:,.0f} ({u['flash_ms_per_token']:.2f}) | "
                       f"{u['ESTIMATED_tokens_per_s']:.1f} |")
    out += [""] + [f"{r['target']}: attention over 0..255, split over {'KV heads' if 'arm' in r['target'] else 'heads'}: "
                   f"{r['attention_work']:,.0f} instructions a token on both cores, {r['attention_span']:,.0f} on the "
                   "busiest." for r in res["rows"] if r.get("attention_split")]
    out += ["", "Per split operator type (greedy run, per token, all layers): the 1-core build's instructions against "
            "the 2-core build's critical path through it (core 0's instructions outside the shares + the busiest "
            "share); work = both shares, span = the busiest.", "",
            "| target | operator | 1 core | 2 cores: work | span | critical path | speedup |",
            "|---|---|---|---|---|---|---|"]
    for r in res["rows"]:
        for k, v in r["sites"].items():
            sp = f"{v['speedup']:.2f}x" if v["speedup"] else "-"
            out.append(f"| {r['target']} | {k} | {v['one_core']:,.0f} | {v['work']:,.0f} | {v['span']:,.0f} | "
                       f"{v['critical']:,.0f} | {sp} |")
    return out + [""]


def main() -> None:
    import render as page

    with tempfile.TemporaryDirectory() as d:
        res = dict(rows=[measure_target(Path(d), t, q, e) for t, q, e in BUILDS])
    print("\n".join(render(res)))
    print(page.store("rp2350_cores", res))


if __name__ == "__main__":
    main()
