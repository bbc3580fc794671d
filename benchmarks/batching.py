"""Many sequences at once (issue 19): `slmc compile --batch B` and main_batch.c's continuous batching.

    python benchmarks/batching.py     # measures, stores results.json["batching"], rewrites docs/BENCHMARKS.md
    python benchmarks/batching.py --host-only   # the host tables only (the M33 kernel table, MCU parts, schedule as stored;
                                                # batch_logits.py's part, exact rp2350-arm counts included, is measured)

Host: a stories15M-shaped decoder (random weights, seed 0), q8, compiled with --batch B for B = 1, 2, 4, 8, 16;
2B requests ([BOS, k], k = 2, 3, ...) of 96 positions each; aggregate generated tokens/s of the whole run
(median of 3, all B measured in one run, so the ratios compare like with like). The unbatched build's single
run is the baseline row. RP2350 (rp2350-arm, Cortex-M33 at 150 MHz, weights in flash): stories260K q8 with
--batch 1, 2, 4 and B requests of 32 positions, exact instructions in slmc_step per generated token (Unicorn),
weight bytes read per generated token, and the ESTIMATED aggregate tokens/s (cycle model + flash reads once per
step call); the same for the siracusa-like target (one RV32 core of its cluster at 360 MHz, Hazard3 cycle table).
The batched products run the multi-row kernels (kernels/batch_linear.py); benchmarks/batch_kernels.py measures
them against the single-sequence kernels (Cortex-M33 cycles per MAC under Unicorn, host ns per MAC). Host
tokens/s are wall-clock medians; because the machine may be shared, each host build is also timed in CPU seconds
(user + sys of the model process itself, the least of 9 runs taken in interleaved rounds). The schedule picture is a host run of 8 prompts of
different lengths through 4 slots.
"""

from __future__ import annotations

import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
PICTURE = ROOT / "docs" / "batch_schedule.png"
HOST_B = (1, 2, 4, 8, 16)
MCU_B = (1, 2, 4)


def _slmc(*args) -> str:
    r = subprocess.run([sys.executable, "-m", "slmc.cli", *map(str, args)], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(r.stderr.strip()[-300:])
    return r.stdout


def _requests(path: Path, n: int) -> Path:
    path.write_text("".join(f"1,{2 + k}\n" for k in range(n)))
    return path


def _cpu_seconds(project: Path, req: Path | None, steps: int) -> float:
    """CPU seconds (user + sys) of one run of the model process on these requests (main_batch.c's own
    arguments, as cli_batch.py passes them; req None: the unbatched build's main.c on the prompt 1,2): less
    disturbed than the wall clock on a shared machine."""
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run([str(project / "model"), "-n", str(steps), "-t", "0.0", "-p", "0.9", "-s", "0",
                    *(["-f", str(req.resolve())] if req else ["-i", "1,2"])], capture_output=True, check=True)
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime


CPU_ROUNDS = 9


def host(tmp: Path, log=print) -> dict:
    from slmc.frontend.llama2c import save_v0
    from slmc.frontend.random_model import SHAPES, random_decoder

    ckpt = tmp / "stories15M.bin"
    save_v0(random_decoder(SHAPES["stories15M"], seed=0), ckpt)
    rows = []
    single = tmp / "single"
    _slmc("compile", ckpt, "-q", "q8", "-o", single)
    tps = [json.loads(_slmc("run", single, "--steps", 96, "--prompt-ids", "1,2", "--json"))["tokens_per_s"] for _ in range(3)]
    base = statistics.median(tps)
    log(f"batching: unbatched single run {base:,.0f} tokens/s")
    reqs = {}
    for b in HOST_B:
        out = tmp / f"b{b}"
        _slmc("compile", ckpt, "-q", "q8", "--batch", b, "-o", out)
        req = reqs[b] = _requests(tmp / f"req{b}.txt", 2 * b)
        runs = [json.loads(_slmc("run", out, "--prompt-ids-file", req, "--steps", 96, "--json")) for _ in range(3)]
        agg = statistics.median(r["generated_tokens_per_s"] for r in runs)
        rows.append(dict(batch=b, sequences=2 * b, generated=runs[0]["generated"], steps=runs[0]["steps"],
                         tokens_per_s=agg, tokens_per_s_runs=[r["generated_tokens_per_s"] for r in runs]))
        log(f"batching: host B={b}: {agg:,.0f} tokens/s aggregate")
    # CPU seconds in interleaved rounds (B = 1, 2, 4, 8, 16, then again), the least per B: every B sees the same
    # spells of load from the other processes on this machine
    cpu: dict[int, list[float]] = {b: [] for b in (0, *HOST_B)}  # 0: the unbatched build's single run
    for _ in range(CPU_ROUNDS):
        for b in (0, *HOST_B):
            cpu[b].append(_cpu_seconds(tmp / f"b{b}", reqs[b], 96) if b else _cpu_seconds(single, None, 96))
    for r in rows:
        r.update(cpu_seconds=min(cpu[r["batch"]]), cpu_seconds_runs=cpu[r["batch"]],
                 tokens_per_cpu_s=r["generated"] / min(cpu[r["batch"]]))
        log(f"batching: host B={r['batch']}: {r['tokens_per_cpu_s']:,.0f} tokens per CPU second")
    ids = json.loads(_slmc("run", single, "--steps", 96, "--prompt-ids", "1,2", "--json"))["ids"]
    log(f"batching: unbatched single run {len(ids) / min(cpu[0]):,.0f} tokens per CPU second")
    return dict(model="stories15M-shaped, random weights (seed 0)", numerics="q8", positions=96,
                single_tokens_per_s=base, single_tokens_per_cpu_s=len(ids) / min(cpu[0]),
                single_cpu_seconds_runs=cpu[0],
                rows=rows, load=os.getloadavg()[0], cpus=os.cpu_count(), cpu_rounds=CPU_ROUNDS)


def rp2350(tmp: Path, log=print, target: str = "rp2350-arm") -> dict | None:
    ckpt = SHARED / "models" / "stories260K" / "stories260K.bin"
    if not ckpt.exists():
        return None
    rows = []
    for b in MCU_B:
        out = tmp / f"{target}{b}"
        _slmc("compile", ckpt, "-t", target, "-q", "q8", "--batch", b, "-o", out)
        rep = json.loads((out / "report.json").read_text())
        r = json.loads(_slmc("run", out, "--prompt-ids-file", _requests(tmp / f"rq{b}.txt", b), "--steps", 32, "--json"))
        kernels = sorted(set(re.findall(r"slmc_linear_q8\w*(?=\()", (out / "model.c").read_text())))
        rows.append(dict(batch=b, instructions_per_token=r["instructions_per_token"],
                         weight_bytes_per_token=r["weight_bytes_per_token"], weights_bytes=rep["weights_bytes"],
                         weights_sram_bytes=rep.get("weights_sram_bytes") or 0, context=rep["config"]["seq_len"],
                         kv_cache=rep.get("kv_cache"), estimated_tokens_per_s=r["estimated_tokens_per_s"],
                         estimated_flash_seconds_per_token=r.get("estimated_flash_seconds_per_token"),
                         basis=r["estimate_basis"], linear_kernels=kernels))
        log(f"batching: {target} B={b}: {r['estimated_tokens_per_s']:,.1f} tokens/s (estimate)")
    return dict(model="stories260K", numerics="q8", target=target, positions=32, rows=rows)


def schedule(tmp: Path) -> dict | None:
    ckpt = SHARED / "models" / "stories260K" / "stories260K.bin"
    if not ckpt.exists():
        return None
    out = tmp / "sched"
    _slmc("compile", ckpt, "-q", "q8", "--batch", 4, "-o", out)
    req = tmp / "sched.txt"
    req.write_text("".join(",".join(["1"] + [str(5 + i)] * n) + "\n" for i, n in enumerate((0, 9, 3, 14, 1, 6, 20, 2))))
    r = json.loads(_slmc("run", out, "--prompt-ids-file", req, "--steps", 28, "--json"))
    picture(r)
    return dict(sequences=len(r["sequences"]), steps=r["steps"], rows=r["rows"],
                latency_steps=[s["done_step"] + 1 for s in r["sequences"]], picture=PICTURE.relative_to(ROOT).as_posix())


def picture(run: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    prompts = [len(s["prompt"]) for s in run["sequences"]]
    fig, ax = plt.subplots(figsize=(11, 3.2))
    colors = plt.get_cmap("tab10")
    base: dict[int, int] = {}
    for step, seq, pos, rows in run["schedule"]:
        y = base.get(step, 0)
        prompt = pos + rows <= prompts[seq] and not (rows == 1 and pos == prompts[seq] - 1)
        ax.bar(step, rows, bottom=y, width=0.9, color=colors(seq % 10), edgecolor="black", linewidth=0.3,
               hatch="///" if prompt else None)
        base[step] = y + rows
    for k in range(len(prompts)):
        ax.bar(0, 0, color=colors(k % 10), label=f"seq {k} ({prompts[k]}-token prompt)")
    ax.set_xlabel("step (one slmc_step call)")
    ax.set_ylabel("rows")
    ax.set_title(f"continuous batching, {run['batch']} slots: rows per step by sequence (hatched: prompt chunk rows, "
                 "plain: decode rows)", fontsize=9)
    ax.legend(fontsize=7, ncol=4, loc="upper right")
    ax.set_ylim(0, run["batch"] + 2.2)
    fig.tight_layout()
    PICTURE.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(PICTURE, dpi=110)
    plt.close(fig)


def measure(log=print) -> dict:
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        import batch_kernels
        import batch_logits

        return dict(kernels=batch_kernels.measure(), host=host(tmp, log), logits=batch_logits.measure(tmp, _slmc, log),
                    rp2350=rp2350(tmp, log), siracusa=rp2350(tmp, log, "siracusa-like"), schedule=schedule(tmp))


def _mcu_table(rp: dict, out: list[str]) -> None:
    one = rp["rows"][0]["estimated_tokens_per_s"]
    out += ["", f"{rp['target']}, {rp['model']} {rp['numerics']}, B requests of {rp['positions']} positions: exact "
            "instructions in slmc_step per generated token (Unicorn), weight bytes read per generated token, and the "
            "ESTIMATED aggregate tokens/s (" + rp["rows"][0]["basis"] + "). The fit step gives the KV cache fewer "
            "positions (and fp16) as slots grow.", "",
            "| B | context | KV cache | weights in SRAM B | matrix kernel | instructions/token | weight bytes/token | "
            "flash ms/token | est. tokens/s | x B=1 |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rp["rows"]:
        fl = r.get("estimated_flash_seconds_per_token")
        out.append(f"| {r['batch']} | {r['context']} | {r['kv_cache']} | {r['weights_sram_bytes']:,} | "
                   f"{', '.join(k.removeprefix('slmc_') for k in r.get('linear_kernels', []))} | "
                   f"{r['instructions_per_token']:,.0f} | {r['weight_bytes_per_token']:,.0f} | "
                   f"{fl * 1e3 if fl is not None else 0:.2f} | {r['estimated_tokens_per_s']:,.1f} | "
                   f"**{r['estimated_tokens_per_s'] / one:.2f}** |")


def _host_kernels(rows: list[dict]) -> list[str]:
    """The host kernel table: the single-row kernel, the multi-row one over row-major weights, and linear_q8_rows16.c
    (what a batched host build runs)."""
    def ns(r: dict, key: str) -> str:
        return f"{r[key]:.3f}" if r.get(key) is not None else "–"

    out = ["Host (x86-64), q8, groups of 32, ns per MAC (the best of 30 timings for 768 x 288, of 5 for the 288 x "
           "32,000 classifier, whose 9.2 MB come from memory each call; shared machine, read the ratios): "
           "linear_q8_sse2.c (one row at a time), linear_q8_sse2_rows.c over row-major weights (four token rows per "
           "weight vector; its fastest path this CPU has, checked at run time: AVX-VNNI; in brackets its AVX2 and SSE2 "
           "paths), and linear_q8_rows16.c, which every batched host build runs, over weights stored in the rows16 "
           "order (16 outputs per 512-bit vector, each lane an output's next 4 weights; the token row's 4 activation "
           "bytes broadcast into VPDPBUSD; each weight vector loaded once for up to 8 token rows; AVX-512 VNNI here, "
           "in brackets its AVX-VNNI, AVX2 and SSE2 paths). All three give the same bits per row.", "",
           "| k x m | rows | linear_q8_sse2.c | linear_q8_sse2_rows.c (AVX2, SSE2) | "
           "linear_q8_rows16.c (AVX-VNNI, AVX2, SSE2) | x linear_q8_sse2.c |", "|---|---|---|---|---|---|"]
    for r in rows:
        best = r.get("rows16_ns_per_mac") or r["rows_ns_per_mac"]
        out.append(f"| {r['k']} x {r['m']:,} | {r['rows']} | {ns(r, 'single_ns_per_mac')} | {ns(r, 'rows_ns_per_mac')} "
                   f"({ns(r, 'rows_avx2_ns_per_mac')}, {ns(r, 'rows_sse2_ns_per_mac')}) | {ns(r, 'rows16_ns_per_mac')} "
                   f"({ns(r, 'rows16_avxvnni_ns_per_mac')}, {ns(r, 'rows16_avx2_ns_per_mac')}, "
                   f"{ns(r, 'rows16_sse2_ns_per_mac')}) | **{r['single_ns_per_mac'] / best:.2f}** |")
    return out


def render(res: dict | None) -> list[str]:
    head = "## 14. Many sequences at once: --batch and continuous batching (issue 19)"
    if not res:
        return [head, "", "Not measured in this run.", ""]
    h = res["host"]
    one = next(r for r in h["rows"] if r["batch"] == 1)
    out = [head, "", "`slmc compile --batch B` runs up to B rows (each of any sequence, or a prompt chunk) through "
           "one step graph: attention reads each row's own KV slot in place (passes/batch.py, kernels/batch.py), and "
           "the matrix products run multi-row kernels (kernels/batch_linear.py) that load, and for q8/int8 widen, "
           "each weight once for several rows, bit-identical per row to the single-sequence kernels "
           "(tests/batch/test_rows_kernels.py); main.c admits requests into free slots and mixes prompt chunks with "
           "decode rows under a B-row budget. Every sequence's ids equal its single run's (tests/batch: fp32, q8, "
           "int8 on the host, q8 on the Cortex-M33, int8 on RV32). Reproduce: `python benchmarks/batching.py`.", ""]
    k = res.get("kernels")
    if k:
        out += ["The matrix product kernels, one call over n token rows (benchmarks/batch_kernels.py). Cortex-M33, "
                "q8, exact Unicorn counts, cycles of the Cortex-M33 model per MAC, linear_q8_dsp.c against "
                "linear_q8_dsp_rows.c (two token rows x two weight rows in registers; short rows and groups under "
                "32 go to linear_q8_dsp.c, which is faster there):", "",
                "| k x m, group | rows | single-row kernel cycles/MAC | multi-row kernel cycles/MAC | x |",
                "|---|---|---|---|---|"]
        for r in k["m33"]:
            out.append(f"| {r['k']} x {r['m']}, {r['group']} | {r['rows']} | {r['single_cycles_per_mac']:.3f} | "
                       f"{r['rows_cycles_per_mac']:.3f} | **{r['single_cycles_per_mac'] / r['rows_cycles_per_mac']:.2f}** |")
        out += ["", *_host_kernels(k["host"]), ""]
    load = f" (load average {h['load']:.1f} on {h['cpus']} CPUs while measuring)" if h.get("load") is not None else ""
    out += [f"Host, {h['model']}, {h['numerics']}, 2B requests of {h['positions']} positions, aggregate generated "
            f"tokens/s: wall clock (median of 3) and per CPU second of the model process (least of "
            f"{h.get('cpu_rounds', 5)}, in rounds interleaving the B){load}. This "
            "machine is shared, so the wall-clock figures swing; the CPU-second ones are steadier. Every batched "
            "build, B=1 included, runs linear_q8_rows16.c and attention_f32_x86.c; the unbatched build "
            f"(linear_q8_sse2.c, row-major weights, attention_f32_x86.c), one sequence: {h['single_tokens_per_s']:,.0f} tokens/s"
            + (f", {h['single_tokens_per_cpu_s']:,.0f} per CPU second." if h.get("single_tokens_per_cpu_s")
               else "."), "",
            "| B | requests | steps | tokens/s (wall, aggregate) | x B=1 | tokens per CPU second | x B=1 |",
            "|---|---|---|---|---|---|---|"]
    for r in h["rows"]:
        cpu = r.get("tokens_per_cpu_s")
        c1 = one.get("tokens_per_cpu_s")
        out.append(f"| {r['batch']} | {r['sequences']} | {r['steps']:,} | {r['tokens_per_s']:,.0f} | "
                   f"**{r['tokens_per_s'] / one['tokens_per_s']:.2f}** | "
                   + (f"{cpu:,.0f} | **{cpu / c1:.2f}** |" if cpu and c1 else "– | – |"))
    import batch_logits

    out += batch_logits.render(res.get("logits"), (res.get("kernels") or {}).get("host"))
    for key in ("rp2350", "siracusa"):
        if res.get(key):
            _mcu_table(res[key], out)
    out += ["", *(x for g in _goals(res) for x in (g, ""))][:-1]
    s = res.get("schedule")
    if s:
        out += ["", f"The schedule of {s['sequences']} prompts of different lengths through 4 slots ({s['steps']} "
                f"steps, {s['rows']} rows; per-sequence latency in steps {s['latency_steps']}):", "",
                f"![schedule]({Path(s['picture']).relative_to('docs').as_posix()})"]
    out.append("")
    return out


# perf record of the B=8 host build (stories15M-shaped q8), shares of the cycles, measured with this code
PERF_B8 = dict(products=55, attention=23, argmax=3, quantizer=3, rmsnorm=1, swiglu=2)
# tokens per CPU second before attention_f32_x86.c and the kernel work of the same session (BENCHMARKS 14, a5211a5)
BEFORE = {1: 1265, 8: 3318}


# stories260K's MACs a token: wq, wk, wv, wo, w1, w3 of its 5 layers and the classifier read rows of k = 64 (one group
# of 64); w2 reads k = 172 in groups of 4 (the shapes of the M33 kernel table, batch_kernels.SHAPES)
MACS_260K = {(64, 172, 64): 5 * (4096 + 2048 + 2048 + 4096 + 11008 + 11008) + 32768, (172, 64, 4): 5 * 11008}
SMLAD_FLOOR = 0.5   # cycles per MAC on the Cortex-M33: SMLAD does two 16-bit MACs in one cycle


def _rp2350_bound(res: dict) -> str:
    """Why B=4 cannot reach 2.5x B=1 on this chip: the compute per row that batching cannot share, from the rows
    measured here and the M33 kernel table (cycles per MAC of the products at 1 and 4 rows)."""
    rp = {r["batch"]: r for r in res["rp2350"]["rows"]}
    km = {(r["k"], r["m"], r["group"], r["rows"]): r for r in res["kernels"]["m33"]}
    from slmc.targets import get_target

    tg = get_target(res["rp2350"]["target"])
    hz, flash_cpb = tg.clock_hz, tg.clock_hz / tg.flash.read_bytes_per_s  # flash cycles per byte (= per q8 MAC)
    t1, t4 = (1 / rp[b]["estimated_tokens_per_s"] for b in (1, 4))
    f1, f4 = (rp[b]["estimated_flash_seconds_per_token"] for b in (1, 4))
    p1 = sum(n * km[(*s, 1)]["single_cycles_per_mac"] for s, n in MACS_260K.items()) / hz
    p4 = sum(n * min(km[(*s, 4)]["single_cycles_per_mac"], km[(*s, 4)]["rows_cycles_per_mac"])
             for s, n in MACS_260K.items()) / hz
    floor = sum(MACS_260K.values()) * SMLAD_FLOOR / hz
    rest = t4 - f4 - p4
    big = [r for r in res["kernels"]["m33"] if r["k"] >= 288]  # stories15M's shapes, 1 and 4 rows
    big1 = sum(r["single_cycles_per_mac"] for r in big if r["rows"] == 1) / sum(r["rows"] == 1 for r in big)
    big4 = sum(r["rows_cycles_per_mac"] for r in big if r["rows"] == 4) / sum(r["rows"] == 4 for r in big)
    ceiling = t1 / (floor + rest + f4)
    ms = lambda s: f"{1e3 * s:.2f} ms"  # noqa: E731
    return (f"With 4 slots the weights in flash are read once per step for 4 rows, so the flash time per token falls "
            f"from {ms(f1)} to {ms(f4)}, but the compute per token does not fall ({ms(t1 - f1)} at B=1, {ms(t4 - f4)} "
            f"at B=4). 2.5x needs B=4 at {ms(t1 / 2.5)} a token, i.e. {ms(t1 / 2.5 - f4)} of compute after its flash. "
            f"The products are {ms(p1)} of it ({sum(MACS_260K.values()):,} MACs a token at the kernel table's "
            "1-row cycles per MAC; stories260K's rows are short, k = 64 in one group, and w2's groups are 4 wide, "
            "where the float rescale per group and output, which sharing cannot cut, and the set-up per pair of rows "
            "cost more than the unpacking saves, so linear_q8_dsp_rows.c hands them to linear_q8_dsp.c); the rest, "
            f"{ms(rest)} a token, is per row whatever B is: attention over each row's own cache, SwiGLU's expf, the "
            "norms, RoPE and the q8 activation quantizer. Even with every product of B=4 at the Cortex-M33's floor "
            f"(SMLAD, two MACs a cycle: {ms(floor)}) B=4 would reach {ceiling:.2f}x. With the compute per row unchanged, "
            "(C + F) / (C + F/4) >= 2.5 needs the flash time F at least 4 times the compute C, i.e. 80% of B=1's "
            f"time; here it is {f1 / t1:.0%}. So on this chip and model the goal is out of batching's reach. A model "
            f"whose weights all stream from flash reads a q8 byte per MAC at {tg.flash.read_bytes_per_s / 1e6:g} MB/s, "
            f"{flash_cpb:.0f} cycles per MAC against its products' ~{big1:.2f} (stories15M's shapes, kernel table), so "
            f"even with nothing else per row, 2.5x needs the 4-row kernel at {(big1 + flash_cpb) / 2.5 - flash_cpb / 4:.2f} "
            f"cycles per MAC or less; linear_q8_dsp_rows.c takes {big4:.2f}.")


def _goals(res: dict) -> list[str]:
    """What the figures above say about issue 19's goals, from the measured run."""
    h = {r["batch"]: r for r in res["host"]["rows"]}
    cpu8 = h[8]["tokens_per_cpu_s"] / h[1]["tokens_per_cpu_s"] if h[1].get("tokens_per_cpu_s") else None
    wall8 = h[8]["tokens_per_s"] / h[1]["tokens_per_s"]
    rp = {r["batch"]: r for r in res["rp2350"]["rows"]} if res.get("rp2350") else {}
    rp4 = rp[4]["estimated_tokens_per_s"] / rp[1]["estimated_tokens_per_s"] if rp else None
    met = cpu8 is not None and cpu8 >= 4.0
    single = res["host"].get("single_tokens_per_cpu_s")
    ms1, ms8 = (1e3 / h[b]["tokens_per_cpu_s"] if h[b].get("tokens_per_cpu_s") else 0.0 for b in (1, 8))
    p = PERF_B8
    out = [f"**Goals.** Host B=8 at least 4x B=1: **{'met' if met else 'not met'}**, "
           f"{cpu8:.2f}x per CPU second ({wall8:.2f}x on the wall clock, which the shared machine disturbs most)"
           + (f"; B=8 against the unbatched build's single run: {h[8]['tokens_per_cpu_s'] / single:.2f}x" if single else "")
           + f". It was {BEFORE[8] / BEFORE[1]:.2f}x ({BEFORE[1]:,} and {BEFORE[8]:,} tokens per CPU second) before "
           "attention_f32_x86.c (scores with SIMD lanes over positions, keys transposed 16 x 16 in registers; the "
           "weighted sum with lanes over head dimensions; every value summed in attention_f32.c's order, so the same "
           "bits; 4.1x faster than attention_f32.c with the cache in L2, 2.9x with it in memory), VPDPBUSD with broadcast memory operands, one activation pointer and "
           "prefetched weights in linear_q8_rows16.c (the 8-row products 20-25% faster), and AVX-512 paths in the q8 "
           "quantizer, main.c's argmax (one pass), RMSNorm (a lane per row for the sum of squares, several rows only) "
           "and SwiGLU (whose expf is glibc's algorithm in vector form, equal to libm's expf on all 2^32 inputs), "
           "all bit-identical to the loops they replace. All but the RMSNorm lanes run at B=1 too, and the ratio counts that against B=8: B=1 "
           f"went from {1e3 / BEFORE[1]:.3f} to {ms1:.3f} ms of CPU per token, B=8 from {1e3 / BEFORE[8]:.3f} to "
           f"{ms8:.3f}. At one row the 9.2 MB classifier (60% of the MACs) streams from memory for every token; at "
           "B=8 once per 8 tokens, and what is left is arithmetic and per-row work that no B shares (perf, B=8: "
           f"products {p['products']}% of the cycles, at about 0.006 ns per MAC, 1.6x the bound of their VPDPBUSDs "
           "and per-group float rescale on two vector ports; attention over each row's own cache "
           f"{p['attention']}%, whose 8 slots (K and V of 6 layers, 10.6 MB at 96 positions) come from L3 or memory "
           f"every step, where one slot's 1.3 MB stays in L2; main.c's argmax over 32,000 logits {p['argmax']}%, the quantizer {p['quantizer']}%, "
           f"RMSNorm {p['rmsnorm']}%, SwiGLU {p['swiglu']}%). 4x needs B=8 at {ms1 / 4:.3f} ms per token or less. These "
           "requests' prompts are 2 tokens, so skipping the classifier for a prompt chunk's rows other than its last "
           "(slmc_step_rows) hardly shows here; the prompt-heavy table above measures it." if cpu8
           else "**Goals.** Host: not measured."]
    if rp4 is not None:
        out.append(
            f"RP2350 B=4 at least 2.5x B=1: **{'met' if rp4 >= 2.5 else 'not met'}** ({rp4:.2f}x). "
            + _rp2350_bound(res))
    if res.get("siracusa"):
        s1 = next(r for r in res["siracusa"]["rows"] if r["batch"] == 1)
        out.append("siracusa-like: one RV32 core without an FPU; linear_q8_rv32.c has no multi-row form yet, and "
                   f"the weights a token reads from flash take {1e3 * s1['estimated_flash_seconds_per_token']:.2f} ms "
                   f"of its {1e3 / s1['estimated_tokens_per_s']:.0f} ms at B=1, so there is little to share: the "
                   "soft-float rescale per group and output, per row, dominates, so B does not change the rate.")
    return out


def main() -> None:
    sys.path.insert(0, str(Path(__file__).parent))
    import render as doc

    if "--host-only" in sys.argv[1:]:  # the host part again; the kernel, MCU and schedule parts as stored
        stored = json.loads(doc.RESULTS.read_text()).get("batching") if doc.RESULTS.exists() else None
        if not stored:
            raise SystemExit("batching.py --host-only: no stored batching results to keep (run it without --host-only once)")
        import batch_kernels
        import batch_logits

        with tempfile.TemporaryDirectory() as t:
            kernels = {**(stored.get("kernels") or {}), "host": batch_kernels.host(Path(t))}
            res = {**stored, "kernels": kernels, "host": host(Path(t))}
            res["logits"] = batch_logits.measure(Path(t), _slmc)  # reuses host()'s B=8 build
    else:
        res = measure()

    print("\n".join(render(res)))
    print(doc.store("batching", res))


if __name__ == "__main__":
    main()
