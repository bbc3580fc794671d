"""Mixture of experts on the RP2350 (issue 18): the bundled MoE (models/moe, `make train-moe`) with its experts
read in place from flash, and through an SRAM expert cache of a quarter of all experts under each policy.

    python benchmarks/moe.py     # measures, stores results.json["moe"], rewrites docs/BENCHMARKS.md

Each build is q8 for rp2350-arm with an fp16 KV cache (the cached builds need it to fit the SRAM; the same for
all, so the ids compare), run on the emulator over STEPS positions from the prompt, greedy: exact
instruction counts, the cache's hits, misses and bytes copied, and the estimated tokens/s at 150 MHz
(toolchain/profile.py's cycle model, flash at 37.5 MB/s, the cache's copies not overlapped with compute:
sim/experts.py). Every build must print the same ids (the cache changes no number).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "models" / "moe"
TARGET, STEPS, PROMPT = "rp2350-arm", 64, "Once upon a time"


def _slmc(*args: object) -> str:
    r = subprocess.run([sys.executable, "-m", "slmc.cli", *map(str, args)], capture_output=True, text=True,
                       cwd=ROOT)
    if r.returncode:
        raise RuntimeError(r.stderr.strip())
    return r.stdout


def measure(log=print) -> dict:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        configs = [("in place", [])]
        base = Path(tmp) / "probe"
        _slmc("compile", MODEL, "-t", TARGET, "-q", "q8", "-o", base, "--expert-slots", 2)
        ex = json.loads((base / "report.json").read_text())["experts"]
        quarter = max(ex["top_k"], ex["count"] * ex["layers"] // 4)
        configs += [(f"{quarter} slots, {p}", ["--expert-slots", quarter, "--expert-prefetch", p]) for p in ("none", "lru")]
        for name, flags in configs:
            out = Path(tmp) / name.replace(" ", "_").replace(",", "")
            _slmc("compile", MODEL, "-t", TARGET, "-q", "q8", "--kv-cache", "fp16", "-o", out, *flags)
            rep = json.loads((out / "report.json").read_text())
            run = json.loads(_slmc("run", out, "--steps", STEPS, "--prompt", PROMPT, "--json"))
            row = dict(config=name, ids=run["ids"], instructions_per_token=run["instructions_per_token"],
                       estimated_tokens_per_s=run["estimated_tokens_per_s"],
                       flash_s_per_token=run.get("estimated_flash_seconds_per_token"),
                       cache_bytes=rep["experts"]["cache_bytes"], all_experts_bytes=rep["experts"]["all_experts_bytes"],
                       **{k: run.get(k) for k in ("expert_hits", "expert_misses", "expert_bytes_loaded",
                                                  "expert_stall_s_per_token")})
            log(f"moe: {name}: {row['estimated_tokens_per_s']:.1f} tokens/s (ESTIMATE)")
            rows.append(row)
    assert all(r["ids"] == rows[0]["ids"] for r in rows), "the expert cache changed the ids"
    return dict(model=str(MODEL.relative_to(ROOT)), target=TARGET, steps=STEPS, prompt=PROMPT, rows=rows)


def render(res: dict | None) -> list[str]:
    if not res:
        return []
    out = ["## 16. Mixture of experts on the RP2350 (issue 18)", "",
           f"The bundled MoE ({res['model']}) as q8 for {res['target']} (fp16 KV cache), {res['steps']} positions from "
           f"\"{res['prompt']}\", greedy; every build prints the same ids. ESTIMATES at 150 MHz: exact instruction "
           "counts through the Cortex-M33 cycle model, the weights read from flash at 37.5 MB/s once per token (the "
           "experts: only the chosen ones in place; through the cache, its copies), not overlapped with compute. "
           "Reproduce: `python benchmarks/moe.py`.", "",
           "| experts | SRAM for experts | hits | misses | bytes copied per token | stall per token | instructions per token | tokens/s |",
           "|---|---|---|---|---|---|---|---|"]
    for r in res["rows"]:
        cached = r["expert_hits"] is not None
        hits, misses = (f"{r['expert_hits']:,}", f"{r['expert_misses']:,}") if cached else ("-", "-")
        copied = f"{r['expert_bytes_loaded'] / res['steps']:,.0f}" if cached else "-"
        stall = f"{1e3 * r['expert_stall_s_per_token']:.2f} ms" if cached else "-"
        out.append(f"| {r['config']} | {r['cache_bytes']:,} of {r['all_experts_bytes']:,} B | {hits} | {misses} | "
                   f"{copied} | {stall} | {r['instructions_per_token']:,.0f} | {r['estimated_tokens_per_s']:.1f} |")
    return out + [""]


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    from render import store

    print(store("moe", measure()))
