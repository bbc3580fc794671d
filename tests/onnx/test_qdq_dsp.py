"""The Cortex-M33 DSP kernels of the integer conv and matrix product (kernels/c/conv_integer_dsp.c,
matmul_integer_dsp.c: SXTB16/SMLAD, issue 20) give the portable kernels' int32 sums exactly: one model holding
ConvInteger and MatMulInteger nodes of every path those kernels have (pointwise with channel and output tails, a
plane over the 64-pixel chunk and per-channel weight zero points; 3x3 depthwise at strides 1 and 2 with asymmetric
pads; KxK with 4 columns; dilated; 1-D; grouped; a strided 1x1; matrix products of odd and even depth, column tails,
batched B), uint8 and int8 activations, compiled for the host (portable C) and for cortex-m33 (QEMU), equal bit for
bit, and the host's equal to onnx's reference evaluator."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from slmc.driver import CompileOptions, compile_model, run_graph
from slmc.kernels.registry import select

T = {np.uint8: TensorProto.UINT8, np.int8: TensorProto.INT8}

# name: (x dtype, x shape, w shape, x zero point, w zero point: None, a scalar or per channel, attributes)
CONVS = {
    "pointwise_tails": (np.uint8, (1, 6, 5, 7), (10, 6, 1, 1), 131, "per_channel", {}),
    "pointwise_chunks": (np.int8, (1, 8, 9, 9), (4, 8, 1, 1), -7, 0, {}),
    "depthwise_s1": (np.uint8, (1, 5, 7, 6), (5, 1, 3, 3), 100, None, dict(group=5, pads=[1, 1, 1, 1])),
    "depthwise_s2": (np.int8, (1, 4, 9, 8), (4, 1, 3, 3), 3, "per_channel", dict(group=4, strides=[2, 2], pads=[1, 0, 0, 1])),
    "kxk_4_columns": (np.uint8, (1, 3, 11, 10), (8, 3, 3, 4), 128, None, dict(strides=[2, 1], pads=[1, 2, 0, 1])),
    "dilated": (np.int8, (1, 2, 9, 9), (4, 2, 3, 3), 0, 2, dict(dilations=[2, 2], pads=[2, 2, 2, 2])),
    "conv_1d": (np.uint8, (1, 4, 20), (6, 4, 5), 17, None, dict(strides=[3], pads=[2, 2])),
    "grouped": (np.uint8, (1, 4, 6, 6), (6, 2, 3, 3), 250, "per_channel", dict(group=2, pads=[0, 1, 1, 0])),
    "strided_1x1": (np.int8, (1, 5, 6, 6), (3, 5, 1, 1), -128, None, dict(strides=[2, 2])),
}
# name: (a dtype, a shape, b shape, a zero point, b zero point)
MATMULS = {
    "mm_even": (np.uint8, (3, 10), (10, 6), 120, "per_channel"),
    "mm_odd_batched": (np.int8, (2, 3, 7), (2, 7, 9), -3, 5),
    "mm_small": (np.uint8, (1, 5), (5, 3), 0, None),
}


def _model(rng: np.random.Generator) -> tuple[onnx.ModelProto, dict[str, np.ndarray]]:
    nodes, inits, ins, outs, feeds = [], [], [], [], {}

    def zero(name: str, kind: object, n: int) -> str:
        if kind is None:
            return ""
        v = rng.integers(-3, 4, n).astype(np.int8) if kind == "per_channel" else np.array(kind, np.int8)
        inits.append(numpy_helper.from_array(v, name))
        return name

    def data(name: str, dt: type, shape: tuple[int, ...]) -> None:
        info = np.iinfo(dt)
        feeds[name] = rng.integers(info.min, info.max + 1, shape).astype(dt)
        ins.append(helper.make_tensor_value_info(name, T[dt], list(shape)))

    for name, (dt, xs, ws, xz, wz, attrs) in CONVS.items():
        data(f"{name}_x", dt, xs)
        inits += [numpy_helper.from_array(rng.integers(-128, 128, ws).astype(np.int8), f"{name}_w"),
                  numpy_helper.from_array(np.array(xz, dt), f"{name}_xz")]
        nodes.append(helper.make_node("ConvInteger", [f"{name}_x", f"{name}_w", f"{name}_xz",
                                                      zero(f"{name}_wz", wz, ws[0])], [f"{name}_y"], **attrs))
        outs.append(helper.make_tensor_value_info(f"{name}_y", TensorProto.INT32, None))
    for name, (dt, as_, bs, az, bz) in MATMULS.items():
        data(f"{name}_a", dt, as_)
        inits += [numpy_helper.from_array(rng.integers(-128, 128, bs).astype(np.int8), f"{name}_b"),
                  numpy_helper.from_array(np.array(az, dt), f"{name}_az")]
        nodes.append(helper.make_node("MatMulInteger", [f"{name}_a", f"{name}_b", f"{name}_az",
                                                        zero(f"{name}_bz", bz, bs[-1])], [f"{name}_y"]))
        outs.append(helper.make_tensor_value_info(f"{name}_y", TensorProto.INT32, None))
    # QLinearConv -> ConvInteger + Requantize (requantize_dsp.c): uint8 out with a tiny scale (most outputs saturate
    # at both ends) and int8 out per channel with a bias
    for name, dt, ys, yz, per in (("qconv_u8", np.uint8, 0.5, 128, False), ("qconv_i8", np.int8, 8.0, -5, True)):
        data(f"{name}_x", dt, (1, 3, 6, 6))
        inits += [numpy_helper.from_array(rng.integers(-128, 128, (5, 3, 3, 3)).astype(np.int8), f"{name}_w"),
                  numpy_helper.from_array(np.array(0.05, np.float32), f"{name}_xs"),
                  numpy_helper.from_array(np.array(3, dt), f"{name}_xz"),
                  numpy_helper.from_array((rng.uniform(0.01, 0.1, 5) if per else np.array(0.03)).astype(np.float32),
                                          f"{name}_ws"),
                  numpy_helper.from_array(np.zeros(5 if per else (), np.int8), f"{name}_wz"),
                  numpy_helper.from_array(np.array(ys, np.float32), f"{name}_ys"),
                  numpy_helper.from_array(np.array(yz, dt), f"{name}_yz"),
                  numpy_helper.from_array(rng.integers(-3000, 3000, 5).astype(np.int32), f"{name}_b")]
        nodes.append(helper.make_node("QLinearConv", [f"{name}_{k}" for k in ("x", "xs", "xz", "w", "ws", "wz", "ys", "yz", "b")],
                                      [f"{name}_y"], pads=[1, 1, 1, 1]))
        outs.append(helper.make_tensor_value_info(f"{name}_y", T[dt], None))
    g = helper.make_graph(nodes, "dsp", ins, outs, inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), feeds


def test_dsp_kernels_are_chosen_for_int8_weights_on_the_m33_only(tmp_path: Path) -> None:
    from slmc.frontend.onnx_import import load
    from slmc.targets import get_target

    m, _ = _model(np.random.default_rng(0))
    path = tmp_path / "m.onnx"
    onnx.save(m, str(path))
    graph = load(path)
    m33, rv32 = get_target("cortex-m33").features, get_target("rv32imac").features
    for n in graph.nodes:
        if n.op in ("ConvInteger", "MatMulInteger", "Requantize"):
            assert select(n, m33).c_file.endswith("_dsp.c") and not select(n, rv32).c_file.endswith("_dsp.c"), n.name


@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None or shutil.which("qemu-system-arm") is None,
                    reason="cortex-m33: cross compiler or QEMU not installed (make toolchains)")
def test_dsp_kernels_match_the_portable_ones_bit_for_bit(tmp_path: Path) -> None:
    m, feeds = _model(np.random.default_rng(1))
    path = tmp_path / "m.onnx"
    onnx.save(m, str(path))
    got = {}
    for target in ("host", "cortex-m33"):
        compile_model(CompileOptions(model=path, out=tmp_path / target, target=target))
        got[target], _ = run_graph(tmp_path / target, feeds)
    assert got["host"].keys() == got["cortex-m33"].keys() and len(got["host"]) == len(CONVS) + len(MATMULS) + 2
    for k, v in got["host"].items():
        np.testing.assert_array_equal(got["cortex-m33"][k], v, err_msg=k)
    _check_against_numpy(m, feeds, got["host"])


def _check_against_numpy(m: onnx.ModelProto, feeds: dict[str, np.ndarray], got: dict[str, np.ndarray]) -> None:
    """The host's outputs against onnx's own reference evaluator (exact integer arithmetic)."""
    from onnx.reference import ReferenceEvaluator

    want = ReferenceEvaluator(m).run(None, feeds)
    for i, w in enumerate(want):
        np.testing.assert_array_equal(got[f"output_{i}"], w, err_msg=f"output_{i}")


@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None, reason="cortex-m33: cross compiler not installed")
def test_slmc_run_profile_counts_a_graph_per_operator(tmp_path: Path) -> None:
    """`slmc run DIR --inputs F --profile` on an emulated target prints one inference's instructions per operator;
    `--json` carries the same counts (toolchain/graph_count.py)."""
    import json
    import os
    import subprocess
    import sys

    rng = np.random.default_rng(2)
    x = rng.integers(0, 256, (1, 6, 5, 7)).astype(np.uint8)
    node = helper.make_node("ConvInteger", ["x", "w", "xz"], ["y"])
    inits = [numpy_helper.from_array(rng.integers(-128, 128, (8, 6, 1, 1)).astype(np.int8), "w"),
             numpy_helper.from_array(np.array(9, np.uint8), "xz")]
    g = helper.make_graph([node], "pw", [helper.make_tensor_value_info("x", TensorProto.UINT8, list(x.shape))],
                          [helper.make_tensor_value_info("y", TensorProto.INT32, None)], inits)
    path, out, npz = tmp_path / "m.onnx", tmp_path / "out", tmp_path / "in.npz"
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), str(path))
    np.savez(npz, input_0=x)
    compile_model(CompileOptions(model=path, out=out, target="cortex-m33"))

    def cli(*args: str) -> str:
        r = subprocess.run([sys.executable, "-m", "slmc.cli", "run", str(out), "--inputs", str(npz), *args],
                           capture_output=True, text=True, timeout=300, env=os.environ | {"COLUMNS": "200"})
        assert r.returncode == 0, r.stderr
        return r.stdout

    table = cli("--profile")
    assert "exact instruction counts" in table and "one inference" in table and "conv_integer_dsp.c" in table, table
    js = json.loads(cli("--json"))
    assert js["instructions"] > 0 and js["macs"] == 8 * 6 * 5 * 7 and js["counter"] == "unicorn"
    assert [o["kernel"] for o in js["ops"]] == ["conv_integer_dsp.c"] and js["ops"][0]["instructions"] > 0
    assert f"{js['instructions']:,}" in table
