"""--kv-cache int8 against fp16 (issue 21): stories260K on the RP2350's Cortex-M33 (exact instruction counts under
Unicorn, ESTIMATED tokens/s at 150 MHz), and top-1 agreement on the host over 256 teacher-forced positions.

    .venv/bin/python benchmarks/kv_int8.py     # measures, stores results.json["kv_int8"], rewrites docs/BENCHMARKS.md

M33 rows, per KV cache type (-q q8 -t rp2350-arm --kv-cache {fp16,int8}):
- greedy: `slmc run DIR --steps 256 --temperature 0 --json`: it stops at BOS, so `positions` says how many ran;
- forced: 226 of llama2.c's greedy ids as the prompt (as many as semihosting's 1 KiB command line takes), then
  decoded to position 256: the same ids and positions for both caches. A prompt position runs the decode step
  (the RP2350 builds have no prompt graph), so the mean over the positions run is (prompt + decode
  instructions) / positions; a step costs a + b * position, so the prompt's total and the tail's mean give the mean
  over exactly positions 0..255 (where BOS ends a run early); its ESTIMATE scales the decode tail's cycles per
  instruction and adds the flash term.
Accuracy rows (-t host, -q fp32 and q8, KV cache fp32 / fp16 / int8): the argmax of the teacher-forced logits
against llama2.c's greedy ids (README's figure) and against the same numerics' fp32-cache build.
About 3 minutes on one core."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "models" / "stories260K"
SLMC = [sys.executable, "-m", "slmc.cli"]
CLOCK_HZ = 150e6


def _json(out: str) -> dict:
    return json.loads(out[:out.rindex("}") + 1])


def _compile(tmp: Path, target: str, numerics: str, kv: str) -> Path:
    out = tmp / f"{target}-{numerics}-{kv}"
    subprocess.run([*SLMC, "compile", str(SHARED / "stories260K.bin"), "-t", target, "-q", numerics, "--kv-cache", kv,
                    "-o", str(out)], check=True, capture_output=True)
    return out


def _attention_share(d: dict) -> float:
    att = sum(o["instructions"] for o in d["ops"] if o["op"] == "attention")
    return att / d["instructions_per_token"]


def _ids() -> list[int]:
    return [int(x) for x in (SHARED / "greedy_ids_from_bos.txt").read_text().split()]


def _prompt(limit: int = 900) -> str:
    s = "1"
    for i in _ids():
        if len(s) + len(str(i)) + 1 > limit:
            break
        s += f",{i}"
    return s


def m33(tmp: Path, kv: str) -> dict:
    proj = _compile(tmp, "rp2350-arm", "q8", kv)
    rep = json.loads((proj / "report.json").read_text())
    g = _json(subprocess.run([*SLMC, "run", str(proj), "--steps", "256", "--temperature", "0", "--json"],
                             check=True, capture_output=True, text=True).stdout)
    f = _json(subprocess.run([*SLMC, "run", str(proj), "--steps", "256", "--prompt-ids", _prompt(), "--json"],
                             check=True, capture_output=True, text=True).stdout)
    total = f["prefill"]["instructions"] + f["decode_steps"] * f["instructions_per_token"]
    mean = total / f["positions"]
    # a step's count is a + b * position (attention grows with it, the rest does not): the prompt's total and the
    # decode tail's mean give a and b, hence the mean over exactly positions 0..255 even where BOS came earlier
    n0, n = f["prefill"]["calls"], f["positions"]
    m = np.array([[n0, n0 * (n0 - 1) / 2], [1.0, (n0 + n - 1) / 2]])
    a, b = np.linalg.solve(m, [f["prefill"]["instructions"], f["instructions_per_token"]])
    mean256 = float(a + b * 127.5)
    cpi = f["estimated_cycles_per_token"] / f["instructions_per_token"]
    # a DMA-staged build (codegen/stage_plan.py) waits only where a copy outlasts the compute it overlaps (the replay on
    # the decode tail's operators); an unstaged one reads all its flash bytes after the compute
    est = 1.0 / (mean256 * cpi / CLOCK_HZ + f.get("estimated_flash_stall_seconds_per_token",
                                                  f["estimated_flash_seconds_per_token"]))
    return dict(kv_cache=kv, kv_cache_bytes=rep["kv_cache_bytes"], weights_copied_to_sram=rep.get("weights_sram_bytes"),
                greedy=dict(positions=g["positions"], instructions_per_token=g["instructions_per_token"],
                            estimated_tokens_per_s=g["estimated_tokens_per_s"], attention_share=_attention_share(g),
                            flash_ms_per_token=1e3 * g["estimated_flash_seconds_per_token"],
                            flash_wait_ms_per_token=1e3 * g.get("estimated_flash_stall_seconds_per_token",
                                                                g["estimated_flash_seconds_per_token"])),
                forced=dict(positions=f["positions"], prompt_positions=f["prefill"]["calls"],
                            mean_instructions_per_token=mean, instructions_per_position=dict(a=a, b=b),
                            mean_256_instructions_per_token=mean256, ESTIMATED_tokens_per_s=est,
                            decode_tail_instructions_per_token=f["instructions_per_token"],
                            decode_tail_attention_share=_attention_share(f)))


def accuracy(tmp: Path) -> list[dict]:
    ids = _ids()
    prompt = ",".join(map(str, [1] + ids[:255]))
    rows, argmax = [], {}
    for numerics in ("fp32", "q8"):
        for kv in ("fp32", "fp16", "int8"):
            proj = _compile(tmp, "host", numerics, kv)
            logits = tmp / f"{numerics}-{kv}.f32"
            subprocess.run([*SLMC, "run", str(proj), "--steps", "256", "--prompt-ids", prompt, "--ids",
                            "--dump-logits", str(logits)], check=True, capture_output=True)
            top = np.fromfile(logits, np.float32).reshape(256, -1).argmax(axis=1)
            argmax[numerics, kv] = top
            rows.append(dict(numerics=numerics, kv_cache=kv, vs_llama2c=float((top == np.array(ids[:256])).mean()),
                             vs_fp32_cache=float((top == argmax[numerics, "fp32"]).mean())))
    return rows


def render(res: dict | None) -> list[str]:
    """Section 7b of docs/BENCHMARKS.md."""
    if not res:
        return []
    out = ["### 7b. The KV cache as int8 (issue 21; `--kv-cache int8`, stories260K q8 on rp2350-arm)", "",
           "Exact instruction counts (Unicorn), ESTIMATED tokens/s at 150 MHz (section 7's cycle model and flash term). "
           "*greedy*: `slmc run DIR --steps 256 --temperature 0 --json` from BOS, which stops at BOS (the positions it "
           "ran are given). *over 0..255*: 226 of llama2.c's greedy ids as the prompt (all that semihosting's command "
           "line holds), decoded to position 256; a step costs a + b x position, fitted from the prompt's total and the "
           "tail's mean, whose mean over positions 0..255 is given. Reproduce: `python benchmarks/kv_int8.py`.", "",
           "| KV cache | cache bytes | greedy positions | instr / token, greedy | attention share | flash ms / token "
           "| ESTIMATED tok/s, greedy | a + b x position | instr / token over 0..255 | ESTIMATED tok/s over 0..255 |",
           "|---|---|---|---|---|---|---|---|---|---|"]
    for r in res["m33"]:
        g, f = r["greedy"], r["forced"]
        ab = f["instructions_per_position"]
        out.append(f"| {r['kv_cache']} | {r['kv_cache_bytes']:,} | {g['positions']} | **{g['instructions_per_token']:,.0f}** | "
                   f"{g['attention_share']:.1%} | {g['flash_ms_per_token']:.2f} / {g.get('flash_wait_ms_per_token', g['flash_ms_per_token']):.2f} | "
                   f"{g['estimated_tokens_per_s']:.1f} | "
                   f"{ab['a']:,.0f} + {ab['b']:,.0f} x p | **{f['mean_256_instructions_per_token']:,.0f}** | "
                   f"**{f['ESTIMATED_tokens_per_s']:.1f}** |")
    out += ["", "The int8 cache's record: head_dim int8 values and their scale as binary16 per position and KV head "
            "(kernels/c/kv_write_i8.c); with the float32 scales it had before, the cache took 245,760 B and the top-1 "
            "agreement below read q8 89.5% / 92.6%, fp32 97.3% / 97.3%. Records of 10 bytes put every other KV head's at "
            "2 mod 4: its key and value words (stories260K: 8 loads a position and layer, about 5,100 a token over "
            "0..255) are unaligned single LDRs, which the M33 does in hardware at an extra bus access that the "
            "cycle model does not charge (about +0.5% cycles if each costs one more). The flash term counts the "
            "weight bytes a token reads from flash (RoPE's tables one row); the builds DMA-stage their flash-resident "
            "matrices one product ahead (codegen/stage_plan.py), so the ESTIMATE adds only the waits (flash ms / token "
            "gives the whole read and, after the slash, the waits; toolchain/staged_estimate.py).", "",
            "Top-1 agreement over 256 teacher-forced positions on the host (against llama2.c's greedy ids, and "
            "against the same numerics with an fp32 cache):", "",
            "| numerics | KV cache | vs llama2.c | vs fp32 cache |", "|---|---|---|---|"]
    out += [f"| {r['numerics']} | {r['kv_cache']} | {r['vs_llama2c']:.1%} | {r['vs_fp32_cache']:.1%} |"
            for r in res["accuracy"]]
    by = {r["kv_cache"]: r["forced"]["mean_256_instructions_per_token"] for r in res["m33"]}
    if "int8" in by:
        i8 = next(r for r in res["m33"] if r["kv_cache"] == "int8")["forced"]
        met = by["int8"] <= 550_000 and i8["ESTIMATED_tokens_per_s"] >= 200
        out += ["", f"Goal (issue 21): at most 550,000 instructions/token over 256 positions and 200 ESTIMATED tokens/s: "
                f"**{'met' if met else 'not met'} on one core** ({by['int8']:,.0f}, {i8['ESTIMATED_tokens_per_s']:.1f} "
                "tokens/s; two cores: section 11b); the rest of a token, attention aside, is about "
                f"{next(r for r in res['m33'] if r['kv_cache'] == 'int8')['forced']['instructions_per_position']['a']:,.0f} "
                "instructions, mostly the matrix products.", ""]
    return out


def main() -> None:
    import render as page

    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        res = dict(m33=[m33(tmp, kv) for kv in ("fp16", "int8")], accuracy=accuracy(tmp))
    print("\n".join(render(res)))
    print(page.store("kv_int8", res))


if __name__ == "__main__":
    main()
