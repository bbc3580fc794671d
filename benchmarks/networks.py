"""Whole float networks on the Cortex-M33 (issue 20): exact instructions per inference against MACs.

    python benchmarks/networks.py          # the int8 rows (the float rows kept from results.json), renders BENCHMARKS
    python benchmarks/networks.py --float  # the float rows measured again too

The networks are tests/onnx/cnn_nets.py's (DS-CNN keyword spotting, MobileNetV2 0.35 on 3x96x96, CCT-2 on
3x32x32), exported by torch.onnx.export (TorchScript exporter, opset 17, so BatchNormalization folds in slmc),
compiled with `-t cortex-m33` (fp32, -O2, hard float) and run once: under QEMU for the outputs (checked against
onnxruntime) and in Unicorn for the instructions (toolchain/graph_count.py: every instruction from main's call
of slmc_run_packed to its return, per kernel C file). MACs are slmc's report.json count (Conv, Gemm, MatMul);
instructions/MAC divides all instructions of the inference by them, so element-wise work counts against it.

TensorFlow Lite Micro is not compared: building it for the M33 needs its sources and CMSIS fetched and a
model converted with TensorFlow (pip's tflite-micro is a host interpreter only), which this machine lacks.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
NETS = ("ds_cnn", "mobilenet_v2", "cct_2")
TARGET = "cortex-m33"


def measure_one(name: str, folder: Path, log=print) -> dict:
    import numpy as np
    import torch

    sys.path.insert(0, str(HERE.parent / "tests" / "onnx"))
    from cnn_nets import NETWORKS, macs

    model, x = NETWORKS[name]()
    path = folder / name / "model.onnx"
    path.parent.mkdir(parents=True)
    torch.onnx.export(model, (torch.from_numpy(x),), str(path), input_names=["x"], output_names=["y"], dynamo=False,
                      opset_version=17, do_constant_folding=False)
    c, got, want = _run_and_count(path, x, name, log)
    params = sum(p.numel() for p in model.parameters())
    return dict(name=name, input=list(x.shape), params=params, macs=c.macs, macs_torch=macs(model, x),
                instructions=c.instructions, instructions_per_mac=c.instructions_per_mac,
                estimated_cycles=c.estimated_cycles, counter=c.counter, target=c.target,
                max_abs_err=float(np.abs(got["output_0"] - want).max()),
                kernels=[dict(kernel=k.kernel, calls=k.calls, instructions=k.instructions, macs=k.macs)
                         for k in c.kernels])


def _run_and_count(path: Path, x, label: str, log):
    """The model at `path` compiled for TARGET and run on x: (its instruction count, its outputs, onnxruntime's)."""
    import onnxruntime as rt

    from slmc.driver import CompileOptions, compile_model, run_graph
    from slmc.toolchain.graph_count import count_graph

    want = rt.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    out = path.parent / TARGET
    compile_model(CompileOptions(model=path, out=out, target=TARGET))
    got, _ = run_graph(out, {"x": x})
    t0 = time.perf_counter()
    c = count_graph(out, {"x": x})
    log(f"{label}: {c.instructions:,} instructions, {c.macs:,} MACs ({time.perf_counter() - t0:.0f} s in Unicorn)")
    return c, got, want


QNETS = ("ds_cnn", "mobilenet_v2")


def measure_quantized(name: str, folder: Path, log=print) -> dict:
    """The network quantized by onnxruntime's static quantizer (QDQ, uint8 activations, per-channel int8 weights:
    tests/onnx/test_qdq.py's `quantized`), compiled for the M33: outputs equal to onnxruntime's bit for bit."""
    import numpy as np

    sys.path.insert(0, str(HERE.parent / "tests" / "onnx"))
    from test_qdq import quantized

    path, x = quantized(name, "QDQ", folder / f"{name}_int8")
    c, got, want = _run_and_count(path, x, f"{name} int8", log)
    return dict(name=f"{name}_int8", input=list(x.shape), macs=c.macs, instructions=c.instructions,
                instructions_per_mac=c.instructions_per_mac, estimated_cycles=c.estimated_cycles, counter=c.counter,
                target=c.target, bit_exact=bool(np.array_equal(got["output_0"], want)),
                kernels=[dict(kernel=k.kernel, calls=k.calls, instructions=k.instructions, macs=k.macs)
                         for k in c.kernels])


def measure(log=print, floats: bool = True, old: dict | None = None) -> dict:
    """floats=False keeps the float rows of `old` (results.json's) and measures the int8 rows only."""
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="slmc-networks-") as tmp:
        rows = [measure_one(n, Path(tmp), log) for n in NETS] if floats or not old else old["rows"]
        qrows = [measure_quantized(n, Path(tmp), log) for n in QNETS]
    return dict(target=TARGET, rows=rows, quantized=qrows, seconds=round(time.perf_counter() - t0, 1))


# The same three networks before conv_f32.c's blocked 1x1 and 3x3 paths and mm_f32.c (weight-stationary conv, a
# matrix product streaming rows of B into rows of the output), measured once by this script at commit fa2bded.
BEFORE = {"ds_cnn": 8_797_229, "mobilenet_v2": 195_978_123, "cct_2": 91_291_905}

TITLES = {"ds_cnn": "DS-CNN (KWS, 1x49x10)", "mobilenet_v2": "MobileNetV2 0.35 (3x96x96)", "cct_2": "CCT-2 (3x32x32)"}


def _before(r: dict) -> str:
    b = BEFORE.get(r["name"])
    return "–" if b is None else f"{b:,} ({b / r['macs']:.2f}; now {b / r['instructions']:.1f}x fewer)"


def render(res: dict | None) -> list[str]:
    head = "## 17. Whole float networks on the Cortex-M33 (issue 20)"
    if not res:
        return [head, "", "Not measured in this run.", ""]
    lines = [head, "",
             "Networks built in torch from their papers (tests/onnx/cnn_nets.py), exported by torch.onnx.export, "
             "compiled with `-t cortex-m33` (fp32, hard float, -O2). Instructions per inference are exact (Unicorn, "
             "from main's call of slmc_run_packed to its return); MACs are report.json's (Conv, Gemm, MatMul); "
             "instructions/MAC divides every instruction of the inference by them. The error is the largest "
             "absolute difference from onnxruntime, on the QEMU run. TensorFlow Lite Micro is not compared: "
             "building it for the M33 needs TensorFlow to convert the model and TFLM's sources and CMSIS, which "
             "this machine lacks (pip's tflite-micro is a host interpreter). Reproduce: `python benchmarks/networks.py`.",
             "",
             "The before column is the same count with the kernels of commit fa2bded (a weight-stationary conv "
             "paying a load and a store of the output per MAC, a matrix product streaming rows); now 1x1 convs, "
             "MatMul and Gemm run mm_f32.c (4x4 register blocks) and 3x3 convs an output-stationary path with "
             "the nine weights in registers, with every output summed in the same order as before.",
             "",
             "| network | parameters | MACs | instructions / inference | instructions / MAC | before (instr/MAC) | "
             "largest kernel (share, instr/MAC) | max abs err vs onnxruntime |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in res["rows"]:
        k = r["kernels"][0]
        share = k["instructions"] / r["instructions"]
        kpm = f", {k['instructions'] / k['macs']:.2f}" if k["macs"] else ""
        lines.append(f"| {TITLES.get(r['name'], r['name'])} | {r['params']:,} | {r['macs']:,} | {r['instructions']:,} | "
                     f"{r['instructions_per_mac']:.2f} | {_before(r)} | {k['kernel']} ({share:.0%}{kpm}) | "
                     f"{r['max_abs_err']:.1e} |")
    lines += ["", "Per kernel C file (instructions per inference, MACs, instructions per MAC):", ""]
    for r in res["rows"]:
        parts = [f"{k['kernel']} {k['instructions']:,}" + (f" / {k['macs']:,} MACs = {k['instructions'] / k['macs']:.2f}"
                                                           if k["macs"] else "") for k in r["kernels"]]
        lines.append(f"- {TITLES.get(r['name'], r['name'])}: " + "; ".join(parts))
    lines += _render_quantized(res.get("quantized") or [])
    lines += ["", f"(networks section: {res['seconds']:.0f} s)", ""]
    return lines


# The int8 networks with the portable integer kernels only (conv_integer.c, matmul_integer.c, requantize.c with
# its type test in the loop), before conv_integer_dsp.c and matmul_integer_dsp.c: measured by this script's
# measure_quantized on the same networks and inputs
QBEFORE = {"ds_cnn_int8": 6_284_874, "mobilenet_v2_int8": 89_242_741}


def _render_quantized(rows: list[dict]) -> list[str]:
    if not rows:
        return []
    lines = ["", "### The same networks quantized to int8 (QDQ) on the Cortex-M33", "",
             "onnxruntime's static quantizer (QDQ, uint8 activations, per-channel int8 weights; tests/onnx/test_qdq.py's "
             "`quantized`), compiled with `-t cortex-m33`: ConvInteger/MatMulInteger + Requantize, outputs equal to "
             "onnxruntime's bit for bit (QEMU run). The integer conv and matrix product run conv_integer_dsp.c and "
             "matmul_integer_dsp.c (SXTB16 + SMLAD, two 8-bit MACs per instruction; activations minus their zero point "
             "widened once to int16, zero padding exact; the same int32 sums as the portable kernels) and the "
             "requantization requantize_dsp.c (VCVTN and SSAT/USAT for the rounding and clamp, the same bytes); before: "
             "the portable conv_integer.c, matmul_integer.c and requantize.c. `slmc run DIR --inputs F --profile` "
             "prints the per-operator counts of such a build.", "",
             "| network | MACs | instructions / inference | instructions / MAC | before (instr/MAC) | conv kernel instr/MAC | "
             "requantize share | bit-exact vs onnxruntime |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        b = QBEFORE.get(r["name"])
        before = "–" if b is None else f"{b:,} ({b / r['macs']:.2f}; now {b / r['instructions']:.2f}x fewer)"
        conv = [k for k in r["kernels"] if k["kernel"].startswith("conv_integer")]
        cpm = f"{sum(k['instructions'] for k in conv) / sum(k['macs'] for k in conv):.2f}" if conv else "–"
        req = sum(k["instructions"] for k in r["kernels"] if k["kernel"].startswith("requantize")) / r["instructions"]
        title = TITLES.get(r["name"].removesuffix("_int8"), r["name"]) + " int8"
        lines.append(f"| {title} | {r['macs']:,} | {r['instructions']:,} | {r['instructions_per_mac']:.2f} | {before} | "
                     f"{cpm} | {req:.0%} | {'yes' if r['bit_exact'] else 'NO'} |")
    lines += ["", "Per kernel C file (instructions per inference, MACs, instructions per MAC):", ""]
    for r in rows:
        parts = [f"{k['kernel']} {k['instructions']:,}" + (f" / {k['macs']:,} MACs = {k['instructions'] / k['macs']:.2f}"
                                                           if k["macs"] else "") for k in r["kernels"]]
        lines.append(f"- {TITLES.get(r['name'].removesuffix('_int8'), r['name'])} int8: " + "; ".join(parts))
    return lines


def main() -> None:
    import json

    import render as doc

    old = json.loads(doc.RESULTS.read_text()).get("networks") if doc.RESULTS.exists() else None
    res = measure(floats="--float" in sys.argv, old=old)
    print(doc.store("networks", res))


if __name__ == "__main__":
    main()
