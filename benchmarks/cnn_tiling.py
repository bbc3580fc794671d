"""Whole CNNs tiled through L1, with and without memory sharing (issue 20): DS-CNN and MobileNetV2 0.35 of
tests/onnx/cnn_nets.py, float and quantized by onnxruntime (QDQ), compiled for the Cortex-M33 with
siracusa-like's memory hierarchy (L1 above the L2 arena, weights in L3; `--mem L1=...` far below the largest
layer), so every Conv (and ConvInteger) runs on L1 tiles of output channels x output rows moved by dma.c.

Per network: the tiles, L1 use, bytes moved against the compulsory traffic, the arena with and without
`--memory-sharing` (tiled and untiled), and instructions per inference tiled and untiled, exact (Unicorn,
toolchain/graph_count.py), with the M33 cycle model's estimate. On the M33 the DMA is a memcpy on the core,
so the tiled count includes every byte copied: an upper bound on tiling's cost where a DMA engine moves
the tiles. Outputs against onnxruntime on the tiled, shared build.

    python benchmarks/cnn_tiling.py        # measures, stores into results.json, renders BENCHMARKS.md
"""

from __future__ import annotations

import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BASE = "cortex-m33"
TARGET = f"{BASE}+siracusa-levels"
L1 = {"ds_cnn": "8KiB", "mobilenet_v2": "32KiB"}
LABEL = {"ds_cnn": "DS-CNN (1x49x10)", "mobilenet_v2": "MobileNetV2 0.35 (3x96x96)"}


def _register() -> None:
    from slmc.targets import TARGETS, get_target

    TARGETS[TARGET] = dataclasses.replace(get_target(BASE), name=TARGET, levels=get_target("siracusa-like").levels)


def _export(name: str, quantized: bool, folder: Path):
    sys.path.insert(0, str(HERE.parent / "tests" / "onnx"))
    if quantized:
        from test_qdq import quantized as q

        return q(name, "QDQ", folder)
    from test_cnn_networks import export

    return export(name, folder)


def _compile(path: Path, tag: str, mem: str | None, sharing: str) -> tuple[Path, dict]:
    from slmc.driver import CompileOptions, compile_model

    out = path.parent / tag
    compile_model(CompileOptions(model=path, out=out, target=TARGET, mem=mem, memory_sharing=sharing))
    return out, json.loads((out / "report.json").read_text())


def _count(project: Path, x) -> tuple[int, float | None]:
    """Instructions (exact, Unicorn) and the M33 model's cycles of one inference: toolchain/graph_count.py's run
    without its per-operator attribution, which a tiled build's dma.c calls between the kernels do not fit."""
    from slmc.codegen.project import MAP_MCU
    from slmc.targets import get_target
    from slmc.toolchain.build import build
    from slmc.toolchain.count import code_map
    from slmc.toolchain.graph_run import pack_inputs
    from slmc.toolchain.unicorn_run import run_unicorn

    rep = json.loads((project / "report.json").read_text())
    target = get_target(rep["target"])
    elf = build(project)
    code = code_map(elf, project / MAP_MCU, target)
    with tempfile.TemporaryDirectory(prefix="slmc-count-") as tmp:
        src, dst = Path(tmp) / "inputs.bin", Path(tmp) / "outputs.bin"
        src.write_bytes(pack_inputs(rep["graph_io"], {"x": x}))
        _, counts = run_unicorn(target, elf, code, [str(src), str(dst)], lambda t: None)
    (call,) = counts.decode_calls()
    cycles = [s.cycles for s in call.segments]
    return call.instructions, None if any(c is None for c in cycles) else float(sum(cycles))  # type: ignore[arg-type]


def measure_one(name: str, quantized: bool, folder: Path, log=print) -> dict:
    import numpy as np
    import onnxruntime as rt

    from slmc.driver import run_graph

    path, x = _export(name, quantized, folder / f"{name}{'_q' if quantized else ''}")
    want = rt.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    mem = f"L1={L1[name]}"
    arenas = {}
    for tag, m, sh in (("tiled_on", mem, "on"), ("tiled_off", mem, "off"), ("untiled_on", None, "on"),
                       ("untiled_off", None, "off")):
        out, rep = _compile(path, tag, m, sh)
        arenas[tag] = rep["arena_bytes"]
        if tag == "tiled_on":
            tiled_dir, lv = out, rep["levels"]
            tiled_names = {t["node"] for t in lv["tiles"]}
            untiled = sorted(o["op"] for o in rep["ops"] if o["name"] not in tiled_names)
        if tag == "untiled_on":
            untiled_dir = out
    got, _ = run_graph(tiled_dir, {"x": x})
    counts = {}
    for tag, d in (("tiled", tiled_dir), ("untiled", untiled_dir)):
        t0 = time.perf_counter()
        counts[tag] = _count(d, x)
        log(f"{name}{' int8' if quantized else ''} {tag}: {counts[tag][0]:,} instructions ({time.perf_counter() - t0:.0f} s)")
    tiles = [t for t in lv["tiles"] if t["op"] in ("Conv", "ConvInteger", "MaxPool", "AveragePool")]
    moved = sum(sum(t["moved"].values()) for t in lv["tiles"])
    comp = sum(t["compulsory_bytes"] for t in lv["tiles"])
    err = float(np.abs(got["output_0"].astype(np.float64) - want.astype(np.float64)).max())
    return dict(name=name, quantized=quantized, l1=lv["placement"][0]["capacity"], l1_used=lv["placement"][0]["used"],
                operators=len(tiles), tiles=sum(t["calls"] for t in tiles),
                largest_layer=max(t["compulsory_bytes"] for t in tiles), moved=moved, compulsory=comp, arenas=arenas,
                instructions={k: c[0] for k, c in counts.items()}, cycles={k: c[1] for k, c in counts.items()},
                max_abs_err=err, untiled=untiled, all_ops=len(rep["ops"]))


def measure(log=print) -> dict:
    _register()
    t0 = time.perf_counter()
    rows = []
    with tempfile.TemporaryDirectory(prefix="slmc-cnn-tiling-") as tmp:
        for quantized in (False, True):
            for name in ("ds_cnn", "mobilenet_v2"):
                rows.append(measure_one(name, quantized, Path(tmp), log))
    return dict(target=TARGET, rows=rows, seconds=round(time.perf_counter() - t0, 1))


def _pct(a: int, b: int) -> str:
    return f"{100 * (b - a) / b:.1f}%" if b else "–"


def _untiled(r: dict) -> str:
    """The operators of the tiled build that read L2 in place, by kind."""
    from collections import Counter

    if "untiled" not in r:
        return "–"
    kinds = Counter(r["untiled"])
    return f"{len(r['untiled'])} of {r['all_ops']}" + (" (" + ", ".join(f"{k} x{n}" if n > 1 else k
                                                                      for k, n in sorted(kinds.items())) + ")" if kinds else "")


def render(res: dict | None) -> list[str]:
    head = "### Tiled through L1, with and without memory sharing (issue 20; Cortex-M33 with siracusa-like's levels)"
    if not res:
        return []
    out = [head, "", "DS-CNN and MobileNetV2 above (float, and QDQ int8), compiled with siracusa-like's hierarchy "
           "(L1 above the L2 arena, weights in L3) and an L1 far below the largest layer: every Conv (ConvInteger) "
           "runs on tiles of output channels x output rows, the input rows with their halo ((rows - 1) x stride + "
           "(k - 1) x dilation + 1), chosen for the fewest bytes moved (plan/conv_tiling.py). Arena: `--memory-sharing "
           "off` / `on`, tiled and untiled (the tiled loops have contracts of their own: depthwise by channel tiles, "
           "pointwise rows-outer exactly over its input). Instructions per inference are exact (Unicorn), cycles the "
           "M33 model's estimate; the DMA is a memcpy on the core here, so the tiled figures include every byte moved "
           "(an upper bound where a DMA engine moves the tiles). The tiled, shared outputs against onnxruntime. "
           "Untiled ops: the operators of the tiled build that still read L2 in place (the Gemm / MatMul / "
           "MatMulInteger, ReduceMean, QLinearGlobalAveragePool, per-channel broadcast, ConvTranspose and 3-D rules "
           "of plan/gemm_tiling.py, plan/chunk_tiling.py and plan/conv_tiling.py tile the rest). "
           "Reproduce: `python benchmarks/cnn_tiling.py`.", "",
           "| network | L1 | tiled ops / tiles | L1 used B | largest layer B | moved / compulsory | arena untiled off / on B "
           "| arena tiled off / on B | sharing saves (tiled) | instructions untiled / tiled | est. cycles untiled / tiled "
           "| vs onnxruntime | untiled ops |", "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in res["rows"]:
        a, i, c = r["arenas"], r["instructions"], r["cycles"]
        cyc = f"{c['untiled']:,.0f} / {c['tiled']:,.0f}" if c.get("tiled") else "–"
        out.append(f"| {LABEL[r['name']]}{' int8' if r['quantized'] else ''} | {r['l1'] // 1024} KiB | {r['operators']} / "
                   f"{r['tiles']} | {r['l1_used']:,} | {r['largest_layer']:,} | {r['moved'] / r['compulsory']:.3f} | "
                   f"{a['untiled_off']:,} / {a['untiled_on']:,} | {a['tiled_off']:,} / {a['tiled_on']:,} | "
                   f"{_pct(a['tiled_on'], a['tiled_off'])} | {i['untiled']:,} / {i['tiled']:,} "
                   f"({i['tiled'] / i['untiled']:.3f}x) | {cyc} | "
                   f"{'exact' if r['max_abs_err'] == 0 else 'max err %.1e' % r['max_abs_err']} | {_untiled(r)} |")
    return out + ["", f"(cnn tiling: {res['seconds']:.0f} s)", ""]


def main() -> None:
    import render as doc

    res = measure()
    print("\n".join(render(res)))
    print(doc.store("cnn_tiling", res))


if __name__ == "__main__":
    main()
