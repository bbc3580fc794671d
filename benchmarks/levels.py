"""Multi-level placement and tiling figures (issue 5): per level the plan against its lower bound,
planning time, and bytes moved per step against the compulsory traffic (every operand of a tiled
matrix product moved once), on siracusa-like with L1 = 64, 16 and 8 KiB.

    python benchmarks/levels.py [--quick]     # prints a markdown table; no C is built

stories260K is the real checkpoint in ../shared; stories15M and TinyLlama-42M are seeded random
models of those shapes (frontend/random_model.py), fp32. L3 is set large enough for the fp32
weights (16 MB does not hold stories15M's 60 MB; what fits is the fit check's business, not this
table's), and the same for L2 where the KV cache needs it.
"""

from __future__ import annotations

import sys
import time
from dataclasses import replace
from pathlib import Path

from slmc.config import CompileOptions, resolve_config
from slmc.errors import SlmcError
from slmc.frontend.load import load_model
from slmc.frontend.random_model import SHAPES, random_decoder
from slmc.plan.levels import plan_levels
from slmc.plan.tiling import compulsory_bytes
from slmc.stages.program import bind_and_plan, build_programs
from slmc.targets import get_target
from slmc.targets.levels import levels_of, with_mem

SHARED = Path(__file__).resolve().parents[2] / "shared" / "models" / "stories260K" / "stories260K.bin"


def models(quick: bool):
    yield "stories260K", load_model(SHARED)
    if not quick:
        for name in ("stories15M", "tinyllama42M"):
            yield f"{name}-shaped", random_decoder(SHAPES[name])


HEADER = ["| model | step | L1 | L1 plan / bound B | L2 plan / bound B | optimal | planning s | "
          "moved L3->L1 | moved L2->L1 | moved L1->L2 | moved / compulsory |",
          "|---|---|---|---|---|---|---|---|---|---|---|"]


def rows(quick: bool = False, log=lambda s: None) -> list[str]:
    """One markdown row per (model, step, L1 size)."""
    out: list[str] = []
    for name, model in models(quick):
        for seq in (0, 16, 64, 256):
            opts = CompileOptions(Path("x"), "siracusa-like", "fp32", prefill_chunk=seq, mode="prefill" if seq else "decode")
            target = get_target("siracusa-like")
            config = resolve_config(opts)
            built = build_programs(model, config, lambda s: None)[0]
            graphs = built.graphs
            t0 = time.perf_counter()
            # planned without memory sharing: the figures compare the conventional arena with its bound
            planned = bind_and_plan(built, replace(config, sharing=False), lambda s: None)
            binding, plan, weights = planned.binding, planned.plan, planned.weights
            arena_s = time.perf_counter() - t0
            l2 = max(2 << 20, plan.arena_bytes)
            for l1 in (64, 16, 8):
                log(f"levels: {name} {graphs[-1].name} S={seq} L1={l1} KiB")
                t = with_mem(target, f"L1={l1}KiB,L2={l2},L3={max(16 << 20, weights.nbytes)}")
                t1 = time.perf_counter()
                try:
                    lp = plan_levels(graphs, binding, plan, weights.nbytes, levels_of(t), t.name)
                except SlmcError as e:
                    need = str(e).split("smallest L1 that works: ")[-1].split(" B")[0]
                    out.append(f"| {name} | {graphs[-1].name}{' S=' + str(seq) if seq else ''} | {l1} KiB | "
                               f"infeasible: L1 needs {need} B (fp32 keeps K whole) | | | | | | | |")
                    continue
                secs = arena_s + time.perf_counter() - t1
                g = graphs[-1].name
                mv = lp.moved(g)
                comp = sum(compulsory_bytes(tile.shape) for tile in lp.tiles if tile.graph == g)
                u1 = lp.uses[0]
                opt = all(u.optimal and u.used == u.best_bound for u in lp.uses[:2])
                out.append(f"| {name} | {g}{' S=' + str(seq) if seq else ''} | {l1} KiB | {u1.used:,} / {u1.lower_bound:,} | "
                           f"{plan.arena_bytes:,} / {plan.lower_bound_bytes:,} | {'yes' if opt else 'gap'} | {secs:.2f} | "
                           f"{mv.get('L3->L1', 0):,} | {mv.get('L2->L1', 0):,} | {mv.get('L1->L2', 0):,} | "
                           f"{sum(mv.values()) / comp:.3f} |")
            if quick and seq == 16:
                return out
    return out


def measure(log=print) -> dict:
    t0 = time.perf_counter()
    return dict(rows=rows(False, log), seconds=round(time.perf_counter() - t0, 1))


def render(res: dict | None) -> list[str]:
    head = "## 10. Memory levels and tiling (issue 5; siracusa-like, fp32)"
    if not res:
        return [head, "", "Not measured in this run.", ""]
    return [head, "", "Per level the plan against its live-bytes lower bound, planning time, and bytes moved per "
            "step against the compulsory traffic (every operand of a tiled operator moved once), with L1 set to 64, "
            "16 and 8 KiB by `--mem`; no C is built here (tests/e2e/test_tiled.py runs the tiled programs, identical "
            "to the untiled ones). Method and caveats: [LEVELS.md](LEVELS.md). Reproduce: `python benchmarks/levels.py`.",
            "", *HEADER, *res["rows"], "", f"(levels section: {res['seconds']:.0f} s)", ""]


def main() -> None:
    quick = "--quick" in sys.argv
    print("\n".join(HEADER))
    for row in rows(quick):
        print(row, flush=True)


if __name__ == "__main__":
    main()
