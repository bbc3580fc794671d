"""What slmc_step_rows saves (issue 19): a prompt chunk's rows other than the prompt's last skip the final norm
and the classifier (passes/batch.py logits_tail). Part of benchmarks/batching.py (its host part: --host-only
measures it too).

Host: the stories15M-shaped q8 build with --batch 8 (random weights, seed 0), a prompt-heavy workload: 8 requests
of 64 prompt ids (random, seed 0, after BOS) and 16 generated tokens each; tokens (prompt + generated rows) per
CPU second of the model process (user + sys), the least of CPU_ROUNDS runs taken in rounds alternating
main_batch.c with the skip (the default) and with `-a 1` (every row's logits: slmc_step_rows with want NULL),
the same program and the same ids. RP2350 (rp2350-arm, Cortex-M33): stories260K q8 --batch 4, one request of 8
prompt ids (-n 8): exact instructions (Unicorn) of each slmc_step_rows call, a step of 4 prompt rows inside the
prompt (no row wants logits) and the step that ends it (its last row does), with the skip and with -a 1.
"""

from __future__ import annotations

import resource
import subprocess
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
B, REQUESTS, PROMPT, GENERATED = 8, 8, 64, 16
CPU_ROUNDS = 15


def _requests(path: Path, vocab: int) -> Path:
    rng = np.random.default_rng(0)
    path.write_text("".join(",".join(["1", *map(str, rng.integers(2, vocab, PROMPT - 1))]) + "\n"
                            for _ in range(REQUESTS)))
    return path


def _run(project: Path, req: Path, all_rows: bool) -> tuple[float, dict, list[str]]:
    """CPU seconds of one run, its S statistics and its generated-token and schedule lines."""
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run([str(project / "model"), "-n", str(PROMPT + GENERATED), "-t", "0.0", "-p", "0.9", "-s", "0",
                          "-f", str(req.resolve()), *(["-a", "1"] if all_rows else [])],
                         capture_output=True, text=True, check=True).stdout
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    stats = {ln.split()[1]: float(ln.split()[2]) for ln in out.splitlines() if ln.startswith("S ")}
    return (r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime, stats,
            [ln for ln in out.splitlines() if ln[:2] in ("G ", "R ")])


def host(tmp: Path, slmc, log=print) -> dict:
    """`slmc`: batching.py's _slmc. Reuses tmp/b8 (batching.host's B=8 build of the same checkpoint) when there."""
    from slmc.toolchain.build import build

    project = tmp / f"b{B}"
    if not (project / "model.c").exists():
        from slmc.frontend.llama2c import save_v0
        from slmc.frontend.random_model import SHAPES, random_decoder

        ckpt = tmp / "stories15M.bin"
        if not ckpt.exists():
            save_v0(random_decoder(SHAPES["stories15M"], seed=0), ckpt)
        slmc("compile", ckpt, "-q", "q8", "--batch", B, "-o", project)
    build(project)
    req = _requests(tmp / "prompt_heavy.txt", 32000)
    cpu: dict[bool, list[float]] = {False: [], True: []}
    seen: dict[bool, tuple[dict, list[str]]] = {}
    for _ in range(CPU_ROUNDS):
        for all_rows in (True, False):
            s, stats, gen = _run(project, req, all_rows)
            cpu[all_rows].append(s)
            seen[all_rows] = (stats, gen)
    (st_all, gen_all), (st_skip, gen_skip) = seen[True], seen[False]
    if gen_all != gen_skip or st_all["rows"] != st_skip["rows"]:
        raise RuntimeError("batch_logits: the runs with and without the skip generated different ids")
    rows = int(st_skip["rows"])
    sampled = {int(w[1]) for w in map(str.split, gen_skip) if w[0] == "R" and int(w[3]) + int(w[4]) >= PROMPT}
    res = dict(model="stories15M-shaped, random weights (seed 0)", numerics="q8", batch=B, requests=REQUESTS,
               prompt=PROMPT, generated_per_request=GENERATED, rows=rows, steps=int(st_skip["steps"]),
               generated=int(st_skip["generated"]), logit_rows_all=int(st_all["logit_rows"]),
               steps_without_logits=int(st_skip["steps"]) - len(sampled),
               logit_rows_skip=int(st_skip["logit_rows"]), cpu_seconds_all_runs=cpu[True],
               cpu_seconds_skip_runs=cpu[False], cpu_rounds=CPU_ROUNDS,
               tokens_per_cpu_s_all=rows / min(cpu[True]), tokens_per_cpu_s_skip=rows / min(cpu[False]))
    log(f"batching: prompt-heavy host B={B}: {res['tokens_per_cpu_s_all']:,.0f} -> {res['tokens_per_cpu_s_skip']:,.0f} "
        "tokens per CPU second with the classifier skipped")
    return res


def rp2350(tmp: Path, slmc, log=print) -> dict | None:
    ckpt = SHARED / "models" / "stories260K" / "stories260K.bin"
    if not ckpt.exists():
        return None
    from dataclasses import replace

    from slmc.codegen.project import MAP_MCU
    from slmc.targets import get_target
    from slmc.toolchain.build import build
    from slmc.toolchain.count import code_map
    from slmc.toolchain.elf import symbols
    from slmc.toolchain.unicorn_run import run_unicorn

    target = get_target("rp2350-arm")
    project = tmp / "logits_rp2350"
    slmc("compile", ckpt, "-t", target.name, "-q", "q8", "--batch", 4, "-o", project)
    elf = build(project)
    syms = symbols(elf, target.tool_prefix)
    code = replace(code_map(elf, project / MAP_MCU, target, syms), decode=syms.address("slmc_step_rows"), prefill=None)
    req = tmp / "logits_rq.txt"
    req.write_text("1,5,6,7,8,9,10,11\n")
    steps = {}
    for all_rows in (True, False):
        args = ["-n", "8", "-t", "0.0", "-p", "0.9", "-s", "0", "-f", str(req.resolve()),
                *(["-a", "1"] if all_rows else [])]
        _, counts = run_unicorn(target, elf, code, args, lambda t: None)
        steps[all_rows] = [c.instructions for c in counts.calls]
    res = dict(model="stories260K", numerics="q8", target=target.name, batch=4, prompt=8,
               step_instructions_all=steps[True], step_instructions_skip=steps[False])
    log(f"batching: rp2350-arm prompt steps {steps[True]} -> {steps[False]} instructions with the classifier skipped")
    return res


def measure(tmp: Path, slmc, log=print) -> dict:
    return dict(host=host(tmp, slmc, log), rp2350=rp2350(tmp, slmc, log))


def render(res: dict | None, kernels: list[dict] | None = None) -> list[str]:
    """`kernels`: batch_kernels.py's host rows (ns per MAC of the classifier's shape)."""
    if not res or not res.get("host"):
        return []
    h = res["host"]
    a, s = h["tokens_per_cpu_s_all"], h["tokens_per_cpu_s_skip"]
    out = ["", f"Rows that want no logits (slmc_step_rows): a prompt chunk's rows before the prompt's last skip the "
           "final norm and the classifier (passes/batch.py finds them from the graph: the nodes after the blocks "
           "whose outputs only become logits); main.c asks for logits only for the rows it samples. The wanted rows' "
           "logits are bit-identical to the all-rows step's (tests/batch/test_logit_rows.py). Host, "
           f"{h['model']}, {h['numerics']}, --batch {h['batch']}, a prompt-heavy workload: {h['requests']} requests of "
           f"{h['prompt']} prompt ids and {h['generated_per_request']} generated tokens ({h['rows']:,} rows in "
           f"{h['steps']} steps); tokens (prompt + generated) per CPU second of the model process, least of "
           f"{h['cpu_rounds']} runs of each, alternating, same program (`-a 1`: every row's logits):", "",
           "| rows through the classifier | tokens per CPU second | x |", "|---|---|---|",
           f"| every row: {h['logit_rows_all']:,} | {a:,.0f} | **1.00** |",
           f"| the sampled rows: {h['logit_rows_skip']:,} | {s:,.0f} | **{s / a:.2f}** |"]
    ns = {r["rows"]: r.get("rows16_ns_per_mac") for r in kernels or [] if (r["k"], r["m"]) == (288, 32000)}
    if h.get("steps_without_logits") is not None and ns.get(1) and ns.get(B):
        macs = 288 * 32000
        out += ["", "The gain is small on the host because of where the classifier's time goes at B=8: its 9.2 MB of "
                "weights stream from memory once per call whatever the row count (kernel table above, 288 x 32,000: "
                f"1 row {ns[1]:.3f} ns per MAC, {B} rows {ns[B]:.3f}, i.e. {ns[1] * macs * 1e-6:.2f} against "
                f"{ns[B] * macs * B * 1e-6:.2f} ms a call), so dropping 7 of a step's 8 rows saves little; the skip "
                f"pays in full only in a step where no row is sampled: {h['steps_without_logits']} of the "
                f"{h['steps']} here, since from the first prompt's end on nearly every step carries some sequence's "
                "decode row."]
    rp = res.get("rp2350")
    if rp:
        al, sk = rp["step_instructions_all"], rp["step_instructions_skip"]
        out += ["", f"{rp['target']}, {rp['model']} {rp['numerics']}, --batch {rp['batch']}, one prompt of "
                f"{rp['prompt']} ids: exact instructions of each slmc_step_rows call (Unicorn), a step of "
                f"{rp['batch']} prompt rows inside the prompt, then the one that ends it:", "",
                "| step | every row's logits | the sampled rows' | x |", "|---|---|---|---|"]
        what = ["4 prompt rows, none sampled", "4 prompt rows, the last sampled"]
        for i, (x, y) in enumerate(zip(al, sk)):
            out.append(f"| {what[i] if i < len(what) else i} | {x:,} | {y:,} | **{x / y:.2f}** |")
    return out
