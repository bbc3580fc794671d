"""Matrix products, ConvTranspose, per-channel broadcasts, reductions and Resize tiled through L1 (issue 20: kernels/tiles.py
`GemmTiles`, plan/gemm_tiling.py, codegen/tiled_gemm.py; ConvTranspose as `ConvTiles("convt")`; `ChunkTiles` by
channels and planes, Resize plane by plane), with siracusa-like's memory hierarchy and a 1 KiB L1:
- Gemm (transA, transB, alpha/beta, a C per column, per row or none), MatMul with a 3-D A and a 2-D B, both with
  weights and with an activation as B, MatMulInteger (uint8 A with a zero point, int8 B with one per column),
  QuantizeLinear and DequantizeLinear with a scale per channel (by channels) and per tensor (by elements), a
  grouped ConvTranspose whose group's weights do not fit L1 (tiles inside one group: strided weight columns), a
  Mul by a [C, 1, 1] operand, a ReduceMean over the spatial axes and two Resizes (linear, cubic): every one tiled (the report says so, so a
  fallback fails the test), bit for bit the untiled build's outputs, within 1e-4 of onnxruntime (integer:
  exactly); a Gemm whose C has a value per output stays untiled;
- the same graphs on the Cortex-M33 (with siracusa-like's levels; MatMulInteger on its DSP kernel) and on
  siracusa-like itself (rv32imac), both in QEMU, against the untiled builds for the same core."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from slmc.driver import CompileOptions, compile_model, run_graph
from slmc.targets import TARGETS, get_target

rt = pytest.importorskip("onnxruntime")
pytestmark = pytest.mark.slow

HOST, M33 = "host+siracusa-levels", "cortex-m33+siracusa-levels"
F = TensorProto.FLOAT
TOOLS = {"cortex-m33": ("arm-none-eabi-gcc", "qemu-system-arm"), "rv32imac": ("riscv64-unknown-elf-gcc", "qemu-system-riscv32")}


def _rng() -> tuple[np.random.Generator, object]:
    """A generator seeded afresh for each model (the same data whatever order the tests run in) and its floats."""
    rng = np.random.default_rng(21)
    return rng, lambda *shape: rng.standard_normal(shape).astype(np.float32)


@pytest.fixture
def targets(monkeypatch) -> None:
    for name, base in ((HOST, "host"), (M33, "cortex-m33")):
        monkeypatch.setitem(TARGETS, name, dataclasses.replace(get_target(base), name=name,
                                                               levels=get_target("siracusa-like").levels))


def _float_model() -> tuple[onnx.ModelProto, dict[str, np.ndarray]]:
    _, _f = _rng()
    inits = {"w1": _f(37, 24), "c1": _f(37), "w2": _f(24, 37), "c2": _f(13, 1), "cfull": _f(13, 37), "w3": _f(24, 37),
             "wt": _f(16, 4, 3, 3), "bt": _f(8), "k": _f(8, 1, 1), "axes": np.array([2, 3], np.int64),
             "scales": np.array([1, 1, 2, 2], np.float32), "sizes": np.array([1, 6, 7, 9], np.int64)}
    n = helper.make_node
    nodes = [n("Gemm", ["x", "w1", "c1"], ["g1"], name="gemm_tb", transB=1),
             n("Gemm", ["xt", "w2", "c2"], ["g2"], name="gemm_ta", transA=1, alpha=0.5, beta=2.0),
             n("Gemm", ["x", "b"], ["g3"], name="gemm_act"),
             n("Gemm", ["x", "w1", "cfull"], ["g4"], name="gemm_fullc", transB=1),
             n("MatMul", ["x3", "w3"], ["m1"], name="matmul_3d"),
             n("MatMul", ["x", "b"], ["m2"], name="matmul_act"),
             n("ConvTranspose", ["xc", "wt", "bt"], ["ct"], name="convt", group=2, strides=[2, 2], pads=[1, 1, 1, 1]),
             n("Mul", ["ct", "k"], ["pc"], name="per_channel"),
             n("ReduceMean", ["pc", "axes"], ["rm"], name="mean", keepdims=0),
             n("Resize", ["xr", "", "scales"], ["rz1"], name="resize_linear", mode="linear"),
             n("Resize", ["xr", "", "", "sizes"], ["rz2"], name="resize_cubic", mode="cubic",
               coordinate_transformation_mode="asymmetric")]
    ins = {"x": _f(13, 24), "xt": _f(24, 13), "b": _f(24, 37), "x3": _f(2, 7, 24), "xc": _f(1, 16, 6, 5),
           "xr": _f(1, 6, 5, 4)}
    outs = ["g1", "g2", "g3", "g4", "m1", "m2", "pc", "rm", "rz1", "rz2"]
    g = helper.make_graph(nodes, "mats", [helper.make_tensor_value_info(k, F, v.shape) for k, v in ins.items()],
                          [helper.make_tensor_value_info(o, F, None) for o in outs],
                          initializer=[numpy_helper.from_array(v, k) for k, v in inits.items()])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)], ir_version=8), ins


def _int_model() -> tuple[onnx.ModelProto, dict[str, np.ndarray]]:
    """MatMulInteger, and the quantizers (per channel along axis 1, and per tensor) that tile with them."""
    RNG, _f = _rng()
    inits = [numpy_helper.from_array(RNG.integers(-128, 128, (24, 37)).astype(np.int8), "wq"),
             numpy_helper.from_array(np.array(131, np.uint8), "az"),
             numpy_helper.from_array(RNG.integers(-4, 5, 37).astype(np.int8), "wz"),
             numpy_helper.from_array((RNG.random(6) * 0.05 + 0.01).astype(np.float32), "s6"),
             numpy_helper.from_array(RNG.integers(100, 150, 6).astype(np.uint8), "z6"),
             numpy_helper.from_array((RNG.random(6) * 0.05 + 0.01).astype(np.float32), "t6"),
             numpy_helper.from_array(RNG.integers(-9, 9, 6).astype(np.int8), "u6"),
             numpy_helper.from_array(np.array(0.02, np.float32), "s1"), numpy_helper.from_array(np.array(7, np.int8), "z1")]
    n = helper.make_node
    nodes = [n("MatMulInteger", ["xq", "wq", "az", "wz"], ["y"], name="mmi"),
             n("QuantizeLinear", ["xa", "s6", "z6"], ["q"], name="q_axis", axis=1),
             n("DequantizeLinear", ["xi", "t6", "u6"], ["dq"], name="dq_axis", axis=1),
             n("QuantizeLinear", ["xa", "s1", "z1"], ["qt"], name="q_tensor")]
    ins = {"xq": RNG.integers(0, 256, (13, 24)).astype(np.uint8), "xa": _f(1, 6, 6, 7),
           "xi": RNG.integers(-128, 128, (1, 6, 6, 7)).astype(np.int8)}
    types = {"xq": TensorProto.UINT8, "xa": F, "xi": TensorProto.INT8}
    g = helper.make_graph(nodes, "ints", [helper.make_tensor_value_info(k, types[k], v.shape) for k, v in ins.items()],
                          [helper.make_tensor_value_info(o, t, None) for o, t in (("y", TensorProto.INT32),
                           ("q", TensorProto.UINT8), ("dq", F), ("qt", TensorProto.INT8))], initializer=inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)], ir_version=8), ins


MODELS = {"float": _float_model, "int": _int_model}
TILED = {"float": {"gemm_tb", "gemm_ta", "gemm_act", "matmul_3d", "matmul_act", "convt", "per_channel", "mean",
                   "resize_linear", "resize_cubic"},
         "int": {"mmi", "q_axis", "dq_axis", "q_tensor"}}


def _build(model: onnx.ModelProto, ins: dict, folder: Path, target: str, mem: str | None) -> tuple[list, dict]:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "m.onnx"
    onnx.save(model, str(path))
    compile_model(CompileOptions(model=path, out=folder / "out", target=target, mem=mem))
    got, _ = run_graph(folder / "out", ins)
    return [got[f"output_{i}"] for i in range(len(got))], json.loads((folder / "out" / "report.json").read_text())


def _check(kind: str, rep: dict) -> dict:
    tiles = {t["node"]: t for t in rep["levels"]["tiles"]}
    assert set(tiles) == TILED[kind] and not rep["levels"]["in_place"], sorted(tiles)
    assert rep["levels"]["l1_bytes"] <= 1024 and all(t["calls"] > 1 for t in tiles.values())
    return tiles


@pytest.mark.parametrize("kind", ["float", "int"])
def test_tiled_equal_untiled_and_onnxruntime(targets, tmp_path, kind):
    model, ins = MODELS[kind]()
    want = rt.InferenceSession(model.SerializeToString()).run(None, ins)
    got, rep = _build(model, ins, tmp_path / "tiled", HOST, "L1=1KiB")
    ref, _ = _build(model, ins, tmp_path / "untiled", HOST, None)
    tiles = _check(kind, rep)
    for g, r, w in zip(got, ref, want):
        assert np.array_equal(g, r)
        if kind == "int":
            assert g.dtype == w.dtype and np.array_equal(g, w)
        else:
            np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-4)
    if kind == "int":   # by channels (a scale per channel, read in place from the tile's first) and by elements
        assert (tiles["q_axis"]["rows"], tiles["dq_axis"]["rows"], tiles["q_tensor"]["rows"]) == (6, 6, 6 * 6 * 7)
    if kind == "float":
        mats = [t for n, t in tiles.items() if n.startswith(("gemm", "matmul"))]
        assert any(t["rows"] % t["x_tile"][0] or t["n_out"] % t["w_tile"][0] for t in mats), "a shorter last tile"
        assert tiles["convt"]["w_tile"][0] < 4, "tiles inside one group of 4 output channels"
        assert tiles["per_channel"]["rows"] == 8 and tiles["mean"]["out_tile"][1] == 1
        assert tiles["resize_linear"]["rows"] == 6 and tiles["resize_linear"]["out_tile"][1] == 80   # whole planes


@pytest.mark.parametrize("core", ["cortex-m33", "rv32imac"])
@pytest.mark.parametrize("kind", ["float", "int"])
def test_tiled_on_emulated_cores_equal_untiled(targets, tmp_path, core, kind):
    if any(shutil.which(t) is None for t in TOOLS[core]):
        pytest.skip(f"{core}: cross compiler or QEMU not installed (make toolchains)")
    model, ins = MODELS[kind]()
    want = rt.InferenceSession(model.SerializeToString()).run(None, ins)
    tiled = M33 if core == "cortex-m33" else "siracusa-like"   # siracusa-like: rv32imac with L1 / L2 / L3
    got, rep = _build(model, ins, tmp_path / "tiled", tiled, "L1=1KiB")
    ref, _ = _build(model, ins, tmp_path / "untiled", core, None)
    _check(kind, rep)
    for g, r, w in zip(got, ref, want):
        assert np.array_equal(g, r)
        if kind == "int":
            assert np.array_equal(g, w)
        else:
            np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-4)
