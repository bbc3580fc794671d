"""Many sequences at once (issue 19): `slmc compile --batch B` and main_batch.c's continuous batching.

    python benchmarks/batching.py     # measures, stores results.json["batching"], rewrites docs/BENCHMARKS.md

Host: a stories15M-shaped decoder (random weights, seed 0), q8, compiled with --batch B for B = 1, 2, 4, 8, 16;
2B requests ([BOS, k], k = 2, 3, ...) of 96 positions each; aggregate generated tokens/s of the whole run
(median of 3, all B measured in one run, so the ratios compare like with like). The unbatched build's single
run is the baseline row. RP2350 (rp2350-arm, Cortex-M33 at 150 MHz, weights in flash): stories260K q8 with
--batch 1, 2, 4 and B requests of 32 positions, exact instructions in slmc_step per generated token (Unicorn),
weight bytes read per generated token, and the ESTIMATED aggregate tokens/s (cycle model + flash reads once per
step call). The schedule picture is a host run of 8 prompts of different lengths through 4 slots.
"""

from __future__ import annotations

import json
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
    for b in HOST_B:
        out = tmp / f"b{b}"
        _slmc("compile", ckpt, "-q", "q8", "--batch", b, "-o", out)
        req = _requests(tmp / f"req{b}.txt", 2 * b)
        runs = [json.loads(_slmc("run", out, "--prompt-ids-file", req, "--steps", 96, "--json")) for _ in range(3)]
        agg = statistics.median(r["generated_tokens_per_s"] for r in runs)
        rows.append(dict(batch=b, sequences=2 * b, generated=runs[0]["generated"], steps=runs[0]["steps"],
                         tokens_per_s=agg, tokens_per_s_runs=[r["generated_tokens_per_s"] for r in runs]))
        log(f"batching: host B={b}: {agg:,.0f} tokens/s aggregate")
    return dict(model="stories15M-shaped, random weights (seed 0)", numerics="q8", positions=96,
                single_tokens_per_s=base, rows=rows)


def rp2350(tmp: Path, log=print) -> dict | None:
    ckpt = SHARED / "models" / "stories260K" / "stories260K.bin"
    if not ckpt.exists():
        return None
    rows = []
    for b in MCU_B:
        out = tmp / f"rp{b}"
        _slmc("compile", ckpt, "-t", "rp2350-arm", "-q", "q8", "--batch", b, "-o", out)
        rep = json.loads((out / "report.json").read_text())
        r = json.loads(_slmc("run", out, "--prompt-ids-file", _requests(tmp / f"rq{b}.txt", b), "--steps", 32, "--json"))
        rows.append(dict(batch=b, instructions_per_token=r["instructions_per_token"],
                         weight_bytes_per_token=r["weight_bytes_per_token"], weights_bytes=rep["weights_bytes"],
                         weights_sram_bytes=rep.get("weights_sram_bytes") or 0, context=rep["config"]["seq_len"],
                         kv_cache=rep.get("kv_cache"), estimated_tokens_per_s=r["estimated_tokens_per_s"],
                         estimated_flash_seconds_per_token=r.get("estimated_flash_seconds_per_token"),
                         basis=r["estimate_basis"]))
        log(f"batching: rp2350-arm B={b}: {r['estimated_tokens_per_s']:,.1f} tokens/s (estimate)")
    return dict(model="stories260K", numerics="q8", target="rp2350-arm", positions=32, rows=rows)


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
        return dict(host=host(tmp, log), rp2350=rp2350(tmp, log), schedule=schedule(tmp))


def render(res: dict | None) -> list[str]:
    head = "## 14. Many sequences at once: --batch and continuous batching (issue 19)"
    if not res:
        return [head, "", "Not measured in this run.", ""]
    h = res["host"]
    one = next(r["tokens_per_s"] for r in h["rows"] if r["batch"] == 1)
    out = [head, "", f"`slmc compile --batch B` runs up to B rows (each of any sequence, or a prompt chunk) through "
           "one step graph: matrix products read each weight once per call, attention reads each row's own KV slot "
           "in place (passes/batch.py, kernels/batch.py); main.c admits requests into free slots and mixes prompt "
           "chunks with decode rows under a B-row budget. Every sequence's ids equal its single run's "
           "(tests/batch: fp32, q8, int8 on the host, q8 on the Cortex-M33, int8 on RV32). "
           "Reproduce: `python benchmarks/batching.py`.", "",
           f"Host, {h['model']}, {h['numerics']}, 2B requests of {h['positions']} positions, aggregate generated "
           f"tokens/s (median of 3; this machine is shared, so read the ratios, measured in one run). The unbatched "
           f"build's single run: {h['single_tokens_per_s']:,.0f} tokens/s.", "",
           "| B | requests | steps | tokens/s (aggregate) | x B=1 |", "|---|---|---|---|---|"]
    for r in h["rows"]:
        out.append(f"| {r['batch']} | {r['sequences']} | {r['steps']:,} | {r['tokens_per_s']:,.0f} | "
                   f"**{r['tokens_per_s'] / one:.2f}** |")
    rp = res.get("rp2350")
    if rp:
        one = rp["rows"][0]["estimated_tokens_per_s"]
        out += ["", f"RP2350 ({rp['target']}), {rp['model']} {rp['numerics']}, B requests of {rp['positions']} "
                "positions: exact instructions in slmc_step per generated token (Unicorn), weight bytes read per "
                "generated token, and the ESTIMATED aggregate tokens/s (" + rp["rows"][0]["basis"] + "). The fit "
                "step gives the KV cache fewer positions (and fp16) as slots grow.", "",
                "| B | context | KV cache | weights in SRAM B | instructions/token | weight bytes/token | "
                "flash ms/token | est. tokens/s | x B=1 |", "|---|---|---|---|---|---|---|---|---|"]
        for r in rp["rows"]:
            fl = r["estimated_flash_seconds_per_token"]
            out.append(f"| {r['batch']} | {r['context']} | {r['kv_cache']} | {r['weights_sram_bytes']:,} | "
                       f"{r['instructions_per_token']:,.0f} | {r['weight_bytes_per_token']:,.0f} | "
                       f"{fl * 1e3 if fl is not None else 0:.2f} | {r['estimated_tokens_per_s']:,.1f} | "
                       f"**{r['estimated_tokens_per_s'] / one:.2f}** |")
    s = res.get("schedule")
    if s:
        out += ["", f"The schedule of {s['sequences']} prompts of different lengths through 4 slots ({s['steps']} "
                f"steps, {s['rows']} rows; per-sequence latency in steps {s['latency_steps']}):", "",
                f"![schedule]({Path(s['picture']).relative_to('docs').as_posix()})"]
    out += ["", "Not measured yet: the siracusa-like target (its cluster and NPU builds do not take --batch).", ""]
    return out


def main() -> None:
    res = measure()
    sys.path.insert(0, str(Path(__file__).parent))
    import render as doc

    print("\n".join(render(res)))
    print(doc.store("batching", res))


if __name__ == "__main__":
    main()
