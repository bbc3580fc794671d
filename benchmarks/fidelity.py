"""Our estimates next to published silicon (issue 21, "Fidelity"), and section 7's roofline.

`python benchmarks/fidelity.py` computes everything from the cost models (seconds, nothing is run on an
emulator: the roofline and the PSRAM estimate read section 7's stored rows in results.json), stores it as
results.json["fidelity"] and renders docs/BENCHMARKS.md again. `render()` draws the fidelity section,
`render_roofline()` the roofline table at the end of section 7."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

PICO_LLAMA_TOK_S = 19.0  # pico_llama, measured on the chip (DESIGN.md published anchors)


def _mram_assumptions() -> list[str]:
    import slmc.targets.siracusa as sir

    src = Path(sir.__file__).read_text()
    block = src[src.index("SIRACUSA_MRAM_CHIP = "):src.index("SIRACUSA_MRAM = ")]
    return [f"`{m[0]} = {m[1]}`: {m[2]}" for m in re.findall(r"^\s+(\w+)=(.+?),\s+# (.*)$", block, re.M)]


def _chips() -> dict:
    from slmc.sim.fidelity import FIGURES, PAPER, PAPER_CLASSIFIER, PAPER_CONTEXT, reproduce, sensitivity

    ours = reproduce()
    return dict(ours=ours, published=PAPER, ratios={k: ours[k] / PAPER[k] for k in FIGURES},
                context=PAPER_CONTEXT, classifier=PAPER_CLASSIFIER, sensitivity=sensitivity(),
                mram_assumptions=_mram_assumptions())


def _deeploy() -> dict:
    from slmc.sim.fidelity import (DEEPLOY, DEEPLOY_KCYCLES, MICRO_LLAMA64, MICRO_LLAMA64_CONTEXT, MICRO_LLAMA64_OPS,
                                   micro_llama)
    from slmc.sim.roofline import matmul_macs

    rows = []
    n_ops = sum(MICRO_LLAMA64_OPS.values())
    for e in micro_llama():
        pub = DEEPLOY_KCYCLES[e.key]
        rows.append(dict(engine=e.engine, kcycles_per_token=e.cycles_per_token / 1e3, tokens_per_s=e.tokens_per_s,
                         uj_per_token=e.uj_per_token, published_kcycles=pub,
                         ratio_tokens_per_s=e.tokens_per_s / DEEPLOY["tokens_per_s"],
                         ratio_uj=e.uj_per_token / DEEPLOY["uj_per_token"],
                         ratio_kcycles=e.cycles_per_token / 1e3 / pub,
                         implied_cycles_per_operator=(pub * 1e3 - e.cycles_per_token) / n_ops))
    cfg = MICRO_LLAMA64
    return dict(rows=rows, published=DEEPLOY, operators=MICRO_LLAMA64_OPS, n_operators=n_ops,
                shape=dict(dim=cfg.dim, hidden_dim=cfg.hidden_dim, n_layers=cfg.n_layers, n_heads=cfg.n_heads,
                           head_dim=cfg.head_dim, context=MICRO_LLAMA64_CONTEXT,
                           weight_bytes=matmul_macs(cfg) - cfg.vocab_size * cfg.dim),
                implied_power_mw=DEEPLOY["uj_per_token"] * DEEPLOY["tokens_per_s"] / 1e3)


def _mcu(mcu: dict | None) -> tuple[list[dict], list[dict]]:
    """(roofline rows, PSRAM estimates) from section 7's stored rows."""
    if not mcu:
        return [], []
    from slmc.frontend.random_model import SHAPES
    from slmc.sim.roofline import PSRAM_LINE_BYTES_PER_S, PSRAM_PEAK_BYTES_PER_S, psram_estimate, roofline

    flash_bw = 37.5e6  # section 7's flash term (mcu.py assumptions)
    cfg = SHAPES["stories260K"]
    roof = []
    for r in mcu["rows"]:
        d = roofline(r, cfg, flash_bw)
        st = r.get("story") or {}
        if st.get("estimated_tokens_per_s"):
            s = roofline(r, cfg, flash_bw, positions=st["positions"])
            d["story_positions"] = st["positions"]
            d["story_roofline_tokens_per_s"] = s["roofline_tokens_per_s"]
            d["story_time_over_roofline"] = (s["roofline_cycles"] / 150e6 * st["estimated_tokens_per_s"]) ** -1 \
                if s["mac_cycles"] is not None else None
        roof.append(d)
    psram = []
    for r in mcu["rows"]:
        if r["program"] == "llama2.c run.c" and r["isa"] == "cortex-m33":
            for label, bw in (("peak: quad I/O at SCK 75 MHz", PSRAM_PEAK_BYTES_PER_S),
                              ("one 8-byte XIP line per quad read (30 SCK)", PSRAM_LINE_BYTES_PER_S)):
                e = psram_estimate(r, flash_bw, bw)
                e.update(bandwidth=label, ratio=e["tokens_per_s"] / PICO_LLAMA_TOK_S,
                         story_ratio=(e["story_tokens_per_s"] or 0) / PICO_LLAMA_TOK_S or None,
                         flash_tokens_per_s=r["estimated_tokens_per_s"], weights_bytes=r["weights_bytes"])
                psram.append(e)
    return roof, psram


def measure(results: dict) -> dict:
    from slmc.targets.cycles import SOURCES

    roof, psram = _mcu(results.get("mcu"))
    return dict(chips=_chips(), deeploy=_deeploy(), roofline=roof, psram=psram,
                cycle_sources={k: [list(x) for x in v] for k, v in SOURCES.items()})


# ---------------------------------------------------------------------------------------------

def _pct(v: float) -> str:
    return "0%" if abs(v) < 0.005 else f"{v:+.0%}"


def render(res: dict | None) -> list[str]:
    if not res:
        return []
    from render import _table

    c, d = res["chips"], res["deeploy"]
    o, p, r = c["ours"], c["published"], c["ratios"]
    names = dict(ms_8="ms per inference, 8 chips", mj_8="mJ per inference, 8 chips", speedup_8="speedup, 8 chips",
                 edp_8="EDP gain, 8 chips", speedup_64_heads64="speedup, 64 chips, 64 heads")
    out = ["## Fidelity: estimates against published silicon (issue 21, MODELLED)", "",
           "Every figure on our side comes from the cost models of `slmc simulate` and `slmc compile` with the "
           "parameters in `src/slmc/targets/siracusa.py` (each marked source, as recalled, or ASSUMED); none was fitted "
           "to the published figures. Reproduce: `python benchmarks/fidelity.py` (seconds; also re-renders this page).", "",
           f"**Multi-chip paper** ({p['source']}). Ours: `slmc simulate tinyllama42M -t siracusa-mram --classifier "
           f"{c['classifier']} --context {c['context']} --chips 1,8` and `--heads 64 --chips 1,64`: the `siracusa-mram` "
           "chip is siracusa-like plus Siracusa's on-chip MRAM as a weights level (a chip's weights stay there when its "
           "share fits, read into L1 at the MRAM port's bandwidth).", ""]
    out += _table(["figure", "published", "ours", "ours / published"],
                  [[names[k], f"{p[k]:g}", f"{o[k]:.3f}" if o[k] < 10 else f"{o[k]:,.1f}", f"**{r[k]:.2f}x**"] for k in names])
    tb = ", ".join(f"{k} {v:.3f} ms" for k, v in o["time_breakdown_8_ms"].items() if v)
    eb = ", ".join(f"{k} {v:.3f} mJ" for k, v in o["energy_breakdown_8_mj"].items() if v)
    out += [f"What ours rests on: at 8 chips each chip's share ({o['share_8_bytes']:,} B) is in {o['weights_in_8']} and "
            f"the critical path is {tb}; energy {eb}. One chip holds 25.3 MB of weights, streamed from "
            f"{o['weights_in_1']} at the ASSUMED 300 MB/s: {o['ms_1']:.1f} ms per step against the "
            f"{p['ms_8'] * p['speedup_8']:.1f} ms the published 0.54 ms x 26.1 imply (an off-chip bandwidth near "
            f"{25.3e6 / (p['ms_8'] * p['speedup_8'] * 1e-3) / 1e9:.1f} GB/s would give theirs), so our speedups run far "
            f"higher; the 64-head variant at 64 chips holds everything in {o['weights_in_64_heads64']}.", "",
           "Which assumption moves which figure (each parameter alone at 0.5x and 2x its value, or one setting changed; "
           "relative change of our figure):", ""]
    rows = []
    for s in c["sensitivity"]:
        ch = s["change"]
        cells = [" / ".join(_pct(ch[f][k]) for f in ch) for k in names]
        val = "" if s["value"] is None else f" = {s['value']:g}"
        rows.append([f"`{s['parameter']}`{val}" if s["what"] != "setting" else s["parameter"], s["what"], *cells])
    out += _table(["parameter", "what", *[f"{names[k]} (x0.5 / x2)" for k in names]], rows)
    out += ["MRAM parameters (`src/slmc/targets/siracusa.py`, SIRACUSA_MRAM_CHIP):", "",
            *[f"- {a}" for a in c["mram_assumptions"]], ""]
    sh = d["shape"]
    out += [f"**Deeploy's microLlama on Siracusa** ({d['published']['source']}). The workload: Deeploy's microLlama64 "
            f"test network (read from its ONNX in pulp-platform/Deeploy): dim {sh['dim']}, {sh['n_layers']} layers, "
            f"{sh['n_heads']} heads of {sh['head_dim']}, gated FFN {sh['hidden_dim']}, {sh['context']} attended "
            f"positions, no classifier, int8; {d['n_operators']} ONNX operators per step. Ours on one siracusa-mram "
            "chip (weights and KV cache fit L2), at 360 MHz:", ""]
    pub = d["published"]
    out += _table(["engine", "kcycles / token", "published kcycles (GVSoC)", "kcycles: ours / published", "tokens/s",
                   "tokens/s: ours / 340", "uJ / token", "uJ: ours / 490", "cycles per operator that would close the gap"],
                  [[x["engine"], f"{x['kcycles_per_token']:.0f}", f"{x['published_kcycles']:.0f}",
                    f"**{x['ratio_kcycles']:.2f}x**", f"{x['tokens_per_s']:,.0f}", f"**{x['ratio_tokens_per_s']:.1f}x**",
                    f"{x['uj_per_token']:.1f}", f"**{x['ratio_uj']:.3f}x**",
                    f"{x['implied_cycles_per_operator']:,.0f}"] for x in d["rows"]])
    out += [f"Published cycles: {pub['cycles_source']} (the cluster-only figure is 857 x 1.04). 857 kcycles at "
            f"340 tokens/s would mean a {857e3 * 340 / 1e6:.0f} MHz clock; the paper's tokens/s and the tutorial's "
            "cycles need not come from the same build.", ""]
    out += [f"Our model is an order of magnitude too optimistic here. It charges per-MAC and per-byte costs and one "
            f"NPU job set-up per product, while a step of this tiny model is {d['n_operators']} kernel launches, each "
            "with its own tiling, DMA set-up, fork/join and requantisation; at about the cycles per operator in the "
            "last column those fixed costs alone would account for Deeploy's figure. The energy gap is larger still: "
            f"340 tokens/s at 490 uJ/token is {d['implied_power_mw']:.0f} mW on average, against our ASSUMED 60 mW "
            "active power, so Deeploy's measurement takes in more of the SoC (or a higher operating point) than our "
            "chip model does.", ""]
    if res.get("psram"):
        out += ["**pico_llama on the RP2350** (stories260K, fp32 weights in PSRAM, one M33 at 150 MHz, 19 tokens/s "
                "measured): llama2.c's run.c as section 7 counts it (exact M33 instructions, the same cycle table), with "
                "its flash term replaced by every weight read from PSRAM once per token. PSRAM: an APS6404L-class QSPI "
                "device on the QMI's second chip select, at most 109 MHz at 3.3 V (arduino-pico's "
                "RP2350_PSRAM_MAX_SCK_HZ), so the divider is 2 and SCK 75 MHz at 150 MHz.", ""]
        out += _table(["PSRAM bandwidth", "MB/s", "ms / token reading weights", "ESTIMATED tok/s (16 positions)",
                       "/ 19 measured", "ESTIMATED tok/s (whole story)", "/ 19 measured"],
                      [[e["bandwidth"], f"{e['psram_bytes_per_s'] / 1e6:.1f}", f"{e['psram_seconds_per_token'] * 1e3:.1f}",
                        f"**{e['tokens_per_s']:.1f}**", f"{e['ratio']:.2f}x",
                        f"{e['story_tokens_per_s']:.1f} ({e['story_positions']} positions)" if e["story_tokens_per_s"] else "–",
                        f"{e['story_ratio']:.2f}x" if e["story_ratio"] else "–"] for e in res["psram"]])
        out += ["The 8-byte line and 30-SCK transaction are as recalled from the RP2350 datasheet (verify); the peak "
                "row is what section 7's flash term already assumes.", ""]
    src = res.get("cycle_sources") or {}
    for isa, rows in src.items():
        out += [f"Cycle table `{isa}` (`src/slmc/targets/cycles.py`, SOURCES): where each instruction class's cost comes from:", ""]
        out += _table(["instruction class", "cycles", "source"], [list(x) for x in rows])
    return out


def render_roofline(res: dict | None) -> list[str]:
    if not res or not res.get("roofline"):
        return []
    from render import _table

    rows = []
    for x in res["roofline"]:
        far = f"**{x['cycles_over_roofline']:.1f}x**" if x["cycles_over_roofline"] else "–"
        ins = f"{x['instructions_over_mac_term']:.1f}x" if x["instructions_over_mac_term"] else "–"
        st = f"{x['story_time_over_roofline']:.1f}x" if x.get("story_time_over_roofline") else "–"
        rows.append([x["program"], x["numerics"], x["weights"].split(":")[0].split(" (")[0], x["isa"],
                     f"{x['macs_per_token']:,.0f}", f"{x['mac_cycles']:,.0f}" if x["mac_cycles"] is not None else "no FPU",
                     f"{x['memory_cycles']:,.0f}", f"{x['roofline_cycles']:,.0f}", f"{x['roofline_tokens_per_s']:.0f}",
                     f"{x['build_cycles']:,.0f}", far, ins, st])
    return ["**Roofline** (issue 21; `src/slmc/sim/roofline.py`, computed from the rows above and the model's shape): "
            "MAC term = MACs per token (matrix products + attention at the positions run) at the ISA's best "
            "multiply-accumulate (Cortex-M33: SMLAD, 2 int8 MACs per instruction and cycle; fp32: VFMA, 1 MAC per "
            "instruction, 2 cycles as VMUL + VADD; RV32IMAC: MUL + ADD; q8 and int8 at the integer rate); memory term = "
            "the flash bytes the row reads per token at 37.5 MB/s + its SRAM weights and KV cache (fp16 for slmc, fp32 "
            "for llama2.c) at 4 B per cycle (ASSUMED); roofline = MAC term + memory term, as the estimate adds a flash "
            "term read in place; for slmc's RP2350 builds, which DMA-stage their flash reads one product ahead, "
            "max(MAC term + SRAM term, flash term), the same overlap allowed to the bound. *x roofline*: the build's "
            "ESTIMATED cycles (its flash waits included) over the roofline's.", "",
            *_table(["program", "numerics", "weights", "ISA", "MACs / token", "MAC term cycles", "memory term cycles",
                     "roofline cycles", "roofline tok/s", "build est. cycles", "x roofline", "instructions / MAC-term "
                     "instructions", "x roofline over the story"], rows)]


def main() -> int:
    import render

    results = json.loads(render.RESULTS.read_text()) if render.RESULTS.exists() else {}
    print(render.store("fidelity", measure(results)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
