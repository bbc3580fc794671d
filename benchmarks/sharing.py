"""Memory sharing figures (issue 9): prompt mode (S = 256 tokens) of stories260K and a TinyLlama-42M-shaped
model, fp32, planned with and without the overlap contracts (kernels/overlap.py); issue 21: stories260K in q8
and int8 on the host, the M33 and RV32 (their kernels, their contracts), with and without the FFN pair fused.

    python benchmarks/sharing.py      # measures, stores results.json["sharing"], rewrites docs/BENCHMARKS.md

Per operator of the first block: the bytes its own inputs and outputs need (whole tensors) against the same
with its output over the consumed input, as the plan placed it (vMCU reports 12 to 49.5% per layer). Whole
prompt step (activations: no KV cache, no weights): the conventional lower bound (the most bytes of whole
tensors live at once), what a TFLite-Micro-style planner reaches on the same lifetimes (largest first, first
fit: plan/memory.py greedy_by_size, from TFLM's GreedyMemoryPlanner), slmc's conventional plan, the bound
under the contracts and slmc's plan with sharing. "unfused": the graph as built (w3 and SwiGLU apart), what
`--memory-sharing off` compiles; "fused": the graph `--memory-sharing on` compiles (w3 with the gate in its
epilogue, so the gate's bytes take the product). No C is built here: tests/e2e/test_sharing.py runs both.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from slmc.driver import bind, load_model
from slmc.frontend.build import build_step_graph
from slmc.frontend.random_model import SHAPES, random_decoder
from slmc.frontend.calibrate import formats_for
from slmc.kernels.int_llm import int8_layout
from slmc.kernels.llm import q8_layout
from slmc.passes import fuse_gate, quantize_int8, quantize_q8, stream_rows
from slmc.plan.lifetimes import step_saving, storage_root
from slmc.plan.memory import greedy_by_size
from slmc.plan.plan import MemoryPlan, plan_memory
from slmc.plan.sharing import contracts_for
from slmc.targets import get_target
from slmc.targets.levels import levels_of

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "models" / "stories260K" / "stories260K.bin"
PICTURE = ROOT / "docs" / "memory_sharing.png"
SEQ = 256
VMCU = (12.0, 49.5)


def _quantized(model, numerics: str, features: frozenset[str]):
    """The prompt step's graph at `numerics`, its weights in the order the target's kernels read (as
    stages/program.py quantizes it)."""
    g = build_step_graph(model, SEQ, "fp32")
    if numerics == "q8":
        return quantize_q8.run(g, q8_layout(features))
    if numerics == "int8":
        return quantize_int8.run(g, formats_for(model), int8_layout(features))
    return g


def _plan(model, fused: bool, sharing: bool, tiled: bool = False, numerics: str = "fp32",
          target_name: str = "host") -> tuple[list, MemoryPlan, float]:
    """tiled: on siracusa-like (L1 256 KiB above the L2 arena), where the contracts follow the tile order.
    q8 and int8: the FFN pair fused for `target_name`'s kernels (kernels/ffn_pair.py) as `slmc compile` fuses it."""
    target = get_target("siracusa-like" if tiled else target_name)
    graphs = [_quantized(model, numerics, target.features)]
    if fused:
        graphs = [fuse_gate.run(g, target.features) for g in graphs]
        if numerics != "fp32":   # as `slmc compile` does (stages/program.py)
            graphs = [stream_rows.run(g, target.features) for g in graphs]
    binding = bind(graphs, target)
    scratch = {id(n): binding[id(n)].scratch(n) for g in graphs for n in g.nodes if id(n) in binding}
    t0 = time.perf_counter()
    levels = levels_of(target) if tiled else None
    plan = plan_memory(graphs, scratch, contracts_for(graphs, binding, levels) if sharing else None)
    return graphs, plan, time.perf_counter() - t0


def _shared_at(plan: MemoryPlan) -> dict[int, int]:
    """step -> bytes the plan's outputs share with the inputs consumed at that step."""
    out: dict[int, int] = {}
    for ov in plan.overlaps:
        out[ov.step] = out.get(ov.step, 0) + plan.shared_bytes(ov)
    return out


def _live(plan: MemoryPlan, steps: int) -> list[int]:
    """Activation bytes live at each step (state, the KV cache, is named without its graph's prefix)."""
    live = [0] * steps
    for b in plan.buffers:
        if "/" in b.name:
            for t in range(b.first, b.last + 1):
                live[t] += b.size
    return live


def _per_op(graphs, plan: MemoryPlan) -> list[dict]:
    """Each operator of block 0: its inputs (temporaries) and outputs as whole tensors, the most its contracts
    let them share, and what the plan shares there."""
    g = graphs[0]
    sizes = {b.name: b.size for b in plan.buffers}
    used = _shared_at(plan)
    rows = []
    for t, node in enumerate(g.nodes):
        if not node.name.startswith("layers.0.") or node.op in ("kv_write", "reshape"):
            continue
        names = {f"{g.name}/{storage_root(v).name}" for v in [*node.inputs, *node.outputs] if v is not None}
        ovs = [ov for ov in plan.overlaps if ov.step == t]
        rows.append(dict(op=node.op, name=node.name, io_bytes=sum(sizes.get(n, 0) for n in names),
                         allowed_bytes=step_saving(list(plan.buffers), ovs), shared_bytes=used.get(t, 0),
                         order="; ".join(dict.fromkeys(ov.share.why for ov in ovs))))
    return rows


# the quantized builds (issue 21): (numerics, target) -> their graphs as built and fused, untiled
QUANTIZED = (("q8", "host"), ("q8", "cortex-m33"), ("q8", "rv32imac"), ("int8", "host"), ("int8", "cortex-m33"),
             ("int8", "rv32imac"))


def _figures(model, fused: bool, tiled: bool, numerics: str = "fp32", target: str = "host") -> tuple[list, dict]:
    graphs, off, off_s = _plan(model, fused, False, tiled, numerics, target)
    _, on, on_s = _plan(model, fused, True, tiled, numerics, target)
    kv = on.kv_cache_bytes
    tflm = greedy_by_size(list(off.buffers)).size - kv
    return graphs, dict(conventional_bound=off.activation_lower_bound_bytes, tflm_greedy=tflm,
                        slmc_conventional=off.activation_arena_bytes, shared_bound=on.shared_lower_bound_bytes - kv,
                        slmc_shared=on.activation_arena_bytes, kv_cache=kv, planner=on.planner, optimal=on.optimal,
                        seconds_off=round(off_s, 2), seconds_on=round(on_s, 2), buffers=len(on.buffers),
                        live_conventional=_live(off, len(graphs[0].nodes)),
                        shared_by_step=[_shared_at(on).get(t, 0) for t in range(len(graphs[0].nodes))],
                        ops=_per_op(graphs, on))


def measure_quantized(name: str, model, log=print) -> list[dict]:
    """The q8 and int8 prompt steps on the host and the ISA targets, as built and with the FFN pair fused."""
    rows = []
    for numerics, target in QUANTIZED:
        row: dict = dict(model=name, seq=SEQ, numerics=numerics, target=target)
        for key in ("unfused", "fused"):
            log(f"sharing: {name} {numerics} on {target} S={SEQ} {key}: planning with and without the contracts")
            _, fig = _figures(model, key == "fused", False, numerics, target)
            del fig["live_conventional"], fig["shared_by_step"], fig["ops"]   # the per-operator table is fp32's
            row[key] = fig
        rows.append(row)
    return rows


def measure_model(name: str, model, log=print) -> dict:
    res: dict = dict(model=name, seq=SEQ)
    for key in ("unfused", "fused", "tiled"):
        fused, tiled = key == "fused", key == "tiled"
        log(f"sharing: {name} S={SEQ} {key}: planning with and without the contracts")
        graphs, off, off_s = _plan(model, fused, False, tiled)
        _, on, on_s = _plan(model, fused, True, tiled)
        kv = on.kv_cache_bytes
        tflm = greedy_by_size(list(off.buffers)).size - kv
        res[key] = dict(conventional_bound=off.activation_lower_bound_bytes, tflm_greedy=tflm,
                        slmc_conventional=off.activation_arena_bytes, shared_bound=on.shared_lower_bound_bytes - kv,
                        slmc_shared=on.activation_arena_bytes, kv_cache=kv, planner=on.planner, optimal=on.optimal,
                        seconds_off=round(off_s, 2), seconds_on=round(on_s, 2), buffers=len(on.buffers),
                        live_conventional=_live(off, len(graphs[0].nodes)),
                        shared_by_step=[_shared_at(on).get(t, 0) for t in range(len(graphs[0].nodes))],
                        ops=_per_op(graphs, on))
    return res


def measure(log=print) -> dict:
    t0 = time.perf_counter()
    models = [("stories260K", load_model(SHARED)), ("TinyLlama-42M-shaped", random_decoder(SHAPES["tinyllama42M"]))]
    out = [measure_model(n, m, log) for n, m in models]
    draw(out)
    for m in out:   # the per-step series are the picture's; results.json keeps the figures
        for key in ("unfused", "fused", "tiled"):
            del m[key]["live_conventional"], m[key]["shared_by_step"]
    quantized = measure_quantized(*models[0], log=log)
    return dict(models=out, quantized=quantized, seconds=round(time.perf_counter() - t0, 1))


def _pct(a: int, b: int) -> str:
    return f"{100 * (1 - a / b):.1f}%" if b else "-"


def draw(models: list[dict], path: Path = PICTURE) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(models), figsize=(6.5 * len(models), 4.2))
    for ax, m in zip(axes, models):
        f = m["fused"]
        conv = [v / 1024 for v in m["unfused"]["live_conventional"]]
        fused = [v / 1024 for v in f["live_conventional"]]
        shared = [(a - s) / 1024 for a, s in zip(f["live_conventional"], f["shared_by_step"])]
        ax.step(range(len(conv)), conv, where="mid", color="#999999", label="whole tensors, graph as built")
        ax.step(range(len(fused)), fused, where="mid", color="#1f77b4", label="whole tensors, FFN pair fused")
        ax.step(range(len(shared)), shared, where="mid", color="#d62728", label="with memory sharing (as planned)")
        ax.axhline(f["slmc_shared"] / 1024, color="#d62728", ls="--", lw=0.8)
        ax.axhline(m["unfused"]["conventional_bound"] / 1024, color="#999999", ls="--", lw=0.8)
        ax.set_title(f"{m['model']}, prompt step S = {m['seq']} (fp32)", fontsize=10)
        ax.set_xlabel("operator (time step)")
        ax.set_ylabel("live activation KiB (no KV cache, no weights)")
        ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def render(res: dict | None) -> list[str]:
    head = "## 12. Memory sharing: outputs over consumed inputs (issues 9 and 21; prompt mode S = 256)"
    if not res:
        return [head, "", "Not measured in this run.", ""]
    out = [head, "", "Activation bytes only (the KV cache is live throughout and weights are constants: neither can "
           "be shared). The TFLite-Micro-style planner is largest-first first-fit (plan/memory.py `greedy_by_size`, "
           "from TFLM's GreedyMemoryPlanner) on the same lifetimes. \"as built\": w3 and SwiGLU apart (what "
           "`--memory-sharing off` compiles); \"fused\": w3 with the gate in its epilogue (what `on` compiles), so the "
           "up projection's output never exists; \"tiled\": on siracusa-like with `-m prefill` (L1 256 KiB above the "
           "L2 arena; not fused), where the matrix products and attention take the contract of their tile order. Reproduce: `python benchmarks/sharing.py`. Outputs identical with and "
           "without sharing: tests/e2e/test_sharing.py (host and M33, random shapes, untiled and tiled).", "",
           "| model | graph | conventional bound B | TFLM greedy B | slmc, no sharing B | bound with sharing B | "
           "slmc with sharing B | below the graph's conventional bound | below the as-built bound | planning s |",
           "|---|---|---|---|---|---|---|---|---|---|"]
    for m in res["models"]:
        base = m["unfused"]["conventional_bound"]
        for key, label in (("unfused", "as built"), ("fused", "fused"), ("tiled", "as built, tiled in L1")):
            r = m[key]
            out.append(f"| {m['model']} | {label} | {r['conventional_bound']:,} | {r['tflm_greedy']:,} | "
                       f"{r['slmc_conventional']:,} | {r['shared_bound']:,} | {r['slmc_shared']:,} | "
                       f"**{_pct(r['slmc_shared'], r['conventional_bound'])}** | {_pct(r['slmc_shared'], base)} | "
                       f"{r['seconds_on']:.2f} |")
    out += ["", "![live activation bytes per operator](memory_sharing.png)", "",
            f"Per operator of block 0 (fused graph): bytes of its own inputs and outputs as whole tensors, the most "
            f"its kernel's contract lets the output lie over consumed inputs (the per-layer reduction; vMCU: "
            f"{VMCU[0]:g} to {VMCU[1]:g}% per layer), and what this plan shares there (only what the peak needs). "
            "The matrix products allow none: they walk output columns outermost (each weight row is read once, from "
            "flash on an MCU) and so reread every token row until the last column.", "",
            "| model | operator | op | inputs + outputs B | contract allows B | reduction | plan shares B | loop order |",
            "|---|---|---|---|---|---|---|---|"]
    for m in res["models"]:
        for r in m["fused"]["ops"]:
            out.append(f"| {m['model']} | {r['name']} | {r['op']} | {r['io_bytes']:,} | {r['allowed_bytes']:,} | "
                       f"{_pct(r['io_bytes'] - r['allowed_bytes'], r['io_bytes'])} | {r['shared_bytes']:,} | "
                       f"{r['order'] or '-'} |")
    out += _render_quantized(res.get("quantized") or [])
    red = [100 * r["allowed_bytes"] / r["io_bytes"] for m in res["models"] for r in m["fused"]["ops"] if r["allowed_bytes"]]
    if red:
        out += ["", f"Per layer, where a contract applies: {min(red):.1f} to {max(red):.1f}% less than whole tensors "
                f"(vMCU: {VMCU[0]:g} to {VMCU[1]:g}%); whole prompt step: see the table above."]
    return out + ["", f"(sharing section: {res['seconds']:.0f} s)", ""]


def _render_quantized(rows: list[dict]) -> list[str]:
    if not rows:
        return []
    out = ["", "q8 and int8 (issue 21), the same prompt step. \"as built\": the graph before issue 21's rewrites (what "
           "`--memory-sharing on` compiled for q8 and int8 until then: their products had no fused form). \"fused\": "
           "what `on` compiles now for a prompt step (kernels/ffn_pair.py; each form calls the target's own kernels, "
           "portable, SSE2, M33 DSP or RV32, one token row at a time, so the outputs are bit-identical to the unfused "
           "build's): w3's product with the SwiGLU gate after it (passes/fuse_gate.py; the up projection's output "
           "never exists and the gate product lies over the consumed gate), and in q8 (passes/stream_rows.py) the "
           "quantizer that feeds one product only (wo, w2, the classifier) run row by row before that product, so "
           "w2's activation scales (group 4: a quarter of the FFN activation) never exist whole, and the gate product "
           "(w1) row by row, so the ISA kernels widen one row of activations into scratch, not all of them. The "
           "ratio: the arena over the conventional bound of the same graph (what the fp32 rows' bold column gives as "
           "a reduction) and over the as-built graph's. The q8 floor left is the FFN's: the residual, the gate and "
           "w3's activations (x_att + w1_out + xq + xs). int8 compiles decode steps only (prompts run token by "
           "token): its rows are the planner's on the same S = 256 graph; in a decode step (one row) the rewrites "
           "are not made, as they save nothing there (the decode arena's peak lies elsewhere). Outputs identical: "
           "tests/passes/test_fuse_gate_quantized.py (kernels against the unfused kernels and the numpy twins), "
           "tests/e2e/test_sharing.py (programs on the host, the M33 and RV32); plans: tests/plan/test_sharing.py.", "",
           "| model | numerics | target (kernels) | graph | conventional bound B | slmc, no sharing B | bound with sharing B | "
           "slmc with sharing B | arena / graph's bound | arena / as-built bound |",
           "|---|---|---|---|---|---|---|---|---|---|"]
    for m in rows:
        base = m["unfused"]["conventional_bound"]
        for key, label in (("unfused", "as built"), ("fused", "fused")):
            r = m[key]
            out.append(f"| {m['model']} | {m['numerics']} | {m['target']} | {label} | {r['conventional_bound']:,} | "
                       f"{r['slmc_conventional']:,} | {r['shared_bound']:,} | {r['slmc_shared']:,} | "
                       f"**{r['slmc_shared'] / r['conventional_bound']:.3f}** | {r['slmc_shared'] / base:.3f} |")
    return out


def main() -> None:
    res = measure()
    sys.path.insert(0, str(Path(__file__).parent))
    import render as doc

    print("\n".join(render(res)))
    print(doc.store("sharing", res))


if __name__ == "__main__":
    main()
