"""Quantized ONNX models, as onnxruntime's static quantizer writes them in its two formats (QuantFormat.QDQ:
QuantizeLinear/DequantizeLinear around float operators; QuantFormat.QOperator: QLinearConv, QGemm, QLinearAdd,
...), compile to integer kernels (8-bit data, int32 accumulation, one fp32 multiply per output in the
requantization) and match onnxruntime's default session bit for bit (issue 20):
- the networks of cnn_nets.py quantized per channel (uint8 activations, int8 weights), on the host and, in the
  slow tier, on the Cortex-M33 and RV32IMAC under QEMU; a copy with its nodes shuffled compiles to the same C;
- the onnx package's conformance cases of QuantizeLinear, DequantizeLinear, QLinearConv, QLinearMatMul,
  ConvInteger and MatMulInteger (all of them also run by test_conformance.py, slow tier);
- what slmc does not lower is refused in one line naming the operator and the fix, exit 2.

onnxruntime's u8s8 kernels on an x86 CPU with AVX2 but without VNNI add pairs of products in int16 with
saturation (vpmaddubsw), so with full-range int8 weights its own result is not the exact sum. The machine these
tests were written on has AVX-VNNI (exact); on a CPU without it the networks are quantized with reduce_range
(7-bit weights, as onnxruntime advises there), and the hand-written models below keep their weights within 7
bits. onnxruntime's QLinearAdd on x86-64 with AVX2 is its FMA kernel, which slmc's reproduces
(kernels/c/qlinear_add.c); an SSE2-only or ARM host runs other QLinearAdd kernels that may differ in the last bit."""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from slmc.driver import CompileOptions, compile_model, run_graph
from slmc.frontend.onnx_import import load

sys.path.append(str(Path(__file__).parent))  # the helper modules next to this file
torch = pytest.importorskip("torch")
rt = pytest.importorskip("onnxruntime")
quantization = pytest.importorskip("onnxruntime.quantization")

from cnn_nets import NETWORKS, compile_run as _compile_run, ort_output as _ort  # noqa: E402

# cct_2 is left out here (test_qlinear_ext.py runs it, with its float LayerNormalization and Erf islands)
QNETS = [n for n in ("ds_cnn", "autoencoder_1d", "mobilenet_v2") if n in NETWORKS]
FORMATS = ["QDQ", "QOperator"]
# the quantizer has no QOperator form of ConvTranspose: the autoencoder's decoder stays float after a
# DequantizeLinear, and float sums in another order than onnxruntime's MLAS differ in the last bits there
FLOAT_TAIL = {("autoencoder_1d", "QOperator")}


def _exact_u8s8() -> bool:
    """Whether onnxruntime's u8s8 products sum exactly here (VNNI, or not x86)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return True
    return not (" avx2" in flags) or any(f in flags for f in ("avx512_vnni", "avx512vnni", "avx_vnni"))


class _Calibration(quantization.CalibrationDataReader):
    def __init__(self, shape: tuple[int, ...]) -> None:
        rng = np.random.default_rng(0)
        self.data = iter([{"x": rng.standard_normal(shape).astype(np.float32)} for _ in range(4)])

    def get_next(self) -> "dict | None":
        return next(self.data, None)


def quantized(name: str, fmt: str, folder: Path, activations: str = "QUInt8") -> tuple[Path, np.ndarray]:
    """The network exported from torch (Conv and BatchNorm folded by the exporter, as onnxruntime's
    quantization guide asks) and quantized statically: per-channel int8 weights, uint8 (or int8) activations."""
    model, x = NETWORKS[name]()
    folder.mkdir(parents=True, exist_ok=True)
    fp = folder / "float.onnx"
    torch.onnx.export(model, (torch.from_numpy(x),), str(fp), input_names=["x"], output_names=["y"], dynamo=False,
                      opset_version=17)
    path = folder / f"{fmt}.onnx"
    quantization.quantize_static(str(fp), str(path), _Calibration(x.shape), quant_format=quantization.QuantFormat[fmt],
                                 activation_type=quantization.QuantType[activations],
                                 weight_type=quantization.QuantType.QInt8, per_channel=True,
                                 reduce_range=not _exact_u8s8())
    return path, x




def _check(name: str, fmt: str, got: np.ndarray, want: np.ndarray) -> None:
    assert got.shape == want.shape and got.dtype == want.dtype
    if (name, fmt) in FLOAT_TAIL:
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    else:
        assert np.array_equal(got, want), f"{int((got != want).sum())} of {want.size} differ"


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("name", QNETS)
def test_quantized_network_matches_onnxruntime_and_shuffled_copy_compiles_the_same(name: str, fmt: str,
                                                                                    tmp_path: Path) -> None:
    path, x = quantized(name, fmt, tmp_path / "net")
    got, out = _compile_run(path, x)
    _check(name, fmt, got, _ort(path, x))
    ops = [n.op for n in load(path).nodes]
    # integer kernels: every Conv of the encoder is ConvInteger + Requantize, nothing float is left of them
    assert "ConvInteger" in ops and "Requantize" in ops and "Conv" not in ops, ops
    m = onnx.load(str(path))
    nodes = list(m.graph.node)
    random.Random(7).shuffle(nodes)
    del m.graph.node[:]
    m.graph.node.extend(nodes)
    (tmp_path / "shuffled").mkdir()
    spath = tmp_path / "shuffled" / path.name
    onnx.save(m, str(spath))
    got2, out2 = _compile_run(spath, x)
    np.testing.assert_array_equal(got2, got)
    for f in ("model.c", "model.h", "weights.bin"):
        assert (out2 / f).read_bytes() == (out / f).read_bytes(), f


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("name", [n for n in ("ds_cnn", "mobilenet_v2") if n in NETWORKS])
def test_int8_activations_match_onnxruntime(name: str, fmt: str, tmp_path: Path) -> None:
    """Signed activations (onnxruntime's s8s8 kernels and int8 requantization): the same, bit for bit."""
    path, x = quantized(name, fmt, tmp_path / "net", "QInt8")
    got, _ = _compile_run(path, x)
    _check(name, fmt, got, _ort(path, x))


@pytest.mark.slow
@pytest.mark.parametrize("target", ["cortex-m33", "rv32imac"])
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("name", QNETS)
def test_quantized_network_on_an_emulated_mcu(name: str, fmt: str, target: str, tmp_path: Path) -> None:
    tools = {"cortex-m33": ("arm-none-eabi-gcc", "qemu-system-arm"),
             "rv32imac": ("riscv64-unknown-elf-gcc", "qemu-system-riscv32")}
    if any(shutil.which(t) is None for t in tools[target]):
        pytest.skip(f"{target}: cross compiler or QEMU not installed (make toolchains)")
    path, x = quantized(name, fmt, tmp_path / "net")
    got, _ = _compile_run(path, x, target)
    _check(name, fmt, got, _ort(path, x))


# ---- the onnx package's conformance cases of these operators ------------------------------------------------

QUANT_OPS = {"QuantizeLinear", "DequantizeLinear", "QLinearConv", "QLinearMatMul", "ConvInteger", "MatMulInteger"}


def test_conformance_cases_of_the_quantized_operators(tmp_path: Path) -> None:
    """Each case passes through compiled C, or is refused for an element type slmc has no kernel for (float8,
    int4, int2, float16 scales); the per-tensor, per-axis and blocked 8- and 16-bit cases all pass."""
    import onnx_conformance as oc

    names = [n for n in oc.accepted_names() if set(oc.case_ops(oc.all_cases()[n])) & QUANT_OPS]
    res = oc.run_chunk(names, tmp_path / "work", oc.kernel_objects(tmp_path))
    failed = {n: o.detail for n, o in res.items() if o.status == "failed"}
    assert not failed, failed
    for n, o in res.items():
        if o.status == "rejected":
            assert oc.rejection_kind(o.detail) and "\n" not in o.detail, (n, o.detail)
    passed = {n for n, o in res.items() if o.status == "passed"}
    must = {"test_quantizelinear", "test_quantizelinear_axis", "test_quantizelinear_int16", "test_quantizelinear_uint16",
            "test_dequantizelinear", "test_dequantizelinear_axis", "test_dequantizelinear_int16", "test_qlinearconv",
            "test_qlinearmatmul_2D_uint8_float32", "test_qlinearmatmul_3D_int8_float32", "test_matmulinteger",
            "test_convinteger_with_padding", "test_convinteger_without_padding", "test_dequantizelinear_blocked",
            "test_quantizelinear_blocked_asymmetric", "test_quantizelinear_blocked_symmetric"}
    assert must <= passed, sorted(must - passed)


# ---- QDQ fusion and the standalone kernels, one operator at a time -------------------------------------------

def _c(arr: np.ndarray, name: str) -> onnx.TensorProto:
    return numpy_helper.from_array(arr, name)


def _qdq_conv(act: str, per_channel: bool) -> onnx.ModelProto:
    """x -> Q -> DQ -> Conv(DQ(w), DQ(b)) [-> Relu | Clip(0, 6)] -> Q -> DQ -> y, written by hand."""
    rng = np.random.default_rng(3)
    w = rng.integers(-64, 64, (4, 3, 3, 3)).astype(np.int8)
    ws = (rng.uniform(0.002, 0.02, 4) if per_channel else np.array(0.01)).astype(np.float32)
    inits = [_c(np.array(0.05, np.float32), "xs"), _c(np.array(128, np.uint8), "xz"), _c(w, "w"), _c(ws, "ws"),
             _c(np.zeros(ws.shape, np.int8), "wz"), _c(rng.integers(-500, 500, 4).astype(np.int32), "b"),
             _c((np.float32(0.05) * ws).astype(np.float32), "bs"),
             _c(np.array(6 / 255 if act == "clip" else 0.04, np.float32), "ys"),
             _c(np.array(100 if act == "none" else 0, np.uint8), "yz"),
             _c(np.array(0, np.float32), "lo"), _c(np.array(6, np.float32), "hi")]
    nodes = [helper.make_node("QuantizeLinear", ["x", "xs", "xz"], ["xq"]),
             helper.make_node("DequantizeLinear", ["xq", "xs", "xz"], ["xd"]),
             helper.make_node("DequantizeLinear", ["w", "ws", "wz"], ["wd"], axis=0),
             helper.make_node("DequantizeLinear", ["b", "bs"], ["bd"], axis=0),
             helper.make_node("Conv", ["xd", "wd", "bd"], ["c"], pads=[1, 1, 1, 1], strides=[2, 1])]
    if act == "relu":
        nodes.append(helper.make_node("Relu", ["c"], ["r"]))
    elif act == "clip":
        nodes.append(helper.make_node("Clip", ["c", "lo", "hi"], ["r"]))
    nodes += [helper.make_node("QuantizeLinear", ["c" if act == "none" else "r", "ys", "yz"], ["yq"]),
              helper.make_node("DequantizeLinear", ["yq", "ys", "yz"], ["y"])]
    g = helper.make_graph(nodes, "qdq", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 9, 7])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


@pytest.mark.parametrize("act", ["none", "relu", "clip"])
@pytest.mark.parametrize("per_channel", [False, True])
def test_hand_written_qdq_conv_fuses_and_matches_onnxruntime(act: str, per_channel: bool, tmp_path: Path) -> None:
    path = tmp_path / "m.onnx"
    onnx.save(_qdq_conv(act, per_channel), str(path))
    x = np.random.default_rng(5).standard_normal((1, 3, 9, 7)).astype(np.float32) * 3
    got, _ = _compile_run(path, x)
    assert np.array_equal(got, _ort(path, x))
    ops = [n.op for n in load(path).nodes]
    # fused as onnxruntime fuses it (the Relu dropped: its Q's zero point is the type's minimum; the Clip
    # dropped: its range holds the Q's)
    assert ops == ["QuantizeLinear", "ConvInteger", "Requantize", "DequantizeLinear"], ops


# ---- refused in one line, exit 2 ------------------------------------------------------------------------------

def _cli_fails_cleanly(tmp_path: Path, m: onnx.ModelProto) -> str:
    path, out = tmp_path / "m.onnx", tmp_path / "out"
    onnx.save(m, str(path))
    r = subprocess.run([sys.executable, "-m", "slmc.cli", "compile", str(path), "-o", str(out)], cwd=tmp_path,
                       capture_output=True, text=True, timeout=120, env=os.environ | {"COLUMNS": "400"})
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.returncode == 2, r.stderr
    assert len(lines) == 1 and "Traceback" not in r.stderr + r.stdout, r.stderr
    assert not out.exists()
    return lines[0]


def _model(nodes: list, inits: list, shape: list[int], dtype: int = TensorProto.UINT8) -> onnx.ModelProto:
    g = helper.make_graph(nodes, "q", [helper.make_tensor_value_info("x", dtype, shape)],
                          [helper.make_tensor_value_info("y", TensorProto.UINT8, None)], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 21), helper.make_opsetid("com.microsoft", 1)],
                             ir_version=10)


SCALES = [_c(np.array(0.1, np.float32), "s"), _c(np.array(3, np.uint8), "z")]


def test_unsupported_quantized_operator_is_refused(tmp_path: Path) -> None:
    m = _model([helper.make_node("QLinearReduceMean", ["x", "s", "z", "s", "z"], ["y"], name="mean1", axes=[1],
                                 keepdims=1, domain="com.microsoft")], SCALES, [1, 4])
    line = _cli_fails_cleanly(tmp_path, m)
    assert "QLinearReduceMean" in line and "mean1" in line and "op_types_to_quantize" in line, line


def test_per_channel_activation_zero_point_is_refused(tmp_path: Path) -> None:
    w = _c(np.ones((2, 3, 1, 1), np.int8), "w")
    xz = _c(np.array([1, 2, 3], np.uint8), "xz")
    m = _model([helper.make_node("QLinearConv", ["x", "s", "xz", "w", "s", "wz", "s", "z"], ["y"], name="qc")],
               SCALES + [w, xz, _c(np.array(0, np.int8), "wz")], [1, 3, 4, 4])
    line = _cli_fails_cleanly(tmp_path, m)
    assert "QLinearConv node 'qc'" in line and "per-tensor" in line, line


def test_scale_of_another_layout_is_refused(tmp_path: Path) -> None:
    """A scale neither per tensor, per axis nor blocked (2 values along an axis of 4)."""
    m = _model([helper.make_node("QuantizeLinear", ["x", "bs", "bz"], ["y"], name="q1", axis=1)],
               [_c(np.full((2,), 0.1, np.float32), "bs"), _c(np.zeros((2,), np.uint8), "bz")], [1, 4],
               TensorProto.FLOAT)
    line = _cli_fails_cleanly(tmp_path, m)
    assert "QuantizeLinear node 'q1'" in line and "per axis" in line, line


def test_qlinear_add_with_run_time_scale_is_refused(tmp_path: Path) -> None:
    g = helper.make_graph([helper.make_node("QLinearAdd", ["x", "s", "z", "x", "sx", "z", "s", "z"], ["y"], name="a1",
                                            domain="com.microsoft")], "q",
                          [helper.make_tensor_value_info("x", TensorProto.UINT8, [1, 4]),
                           helper.make_tensor_value_info("sx", TensorProto.FLOAT, [])],
                          [helper.make_tensor_value_info("y", TensorProto.UINT8, None)], SCALES)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)],
                          ir_version=8)
    line = _cli_fails_cleanly(tmp_path, m)
    assert "QLinearAdd node 'a1'" in line and "constant" in line, line


def _gemm_model(float_out: bool) -> onnx.ModelProto:
    """com.microsoft QGemm (transB, per-column B scale, int32 bias), quantized or float output."""
    rng = np.random.default_rng(4)
    inits = [_c(np.array(0.05, np.float32), "xs"), _c(np.array(120, np.uint8), "xz"),
             _c(rng.integers(-64, 64, (6, 10)).astype(np.int8), "b"),
             _c(rng.uniform(0.002, 0.02, 6).astype(np.float32), "bs"), _c(np.zeros(6, np.int8), "bz"),
             _c(rng.integers(-900, 900, 6).astype(np.int32), "c"), _c(np.array(0.03, np.float32), "ys"),
             _c(np.array(7, np.uint8), "yz")]
    tail = [] if float_out else ["ys", "yz"]
    nodes = [helper.make_node("QuantizeLinear", ["x", "xs", "xz"], ["xq"]),
             helper.make_node("QGemm", ["xq", "xs", "xz", "b", "bs", "bz", "c", *tail], ["y"], domain="com.microsoft",
                              transB=1, alpha=1.0)]
    out_t = TensorProto.FLOAT if float_out else TensorProto.UINT8
    g = helper.make_graph(nodes, "qgemm", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, 10])],
                          [helper.make_tensor_value_info("y", out_t, None)], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)],
                             ir_version=8)


def _qdq_matmul() -> onnx.ModelProto:
    rng = np.random.default_rng(6)
    inits = [_c(np.array(0.05, np.float32), "xs"), _c(np.array(128, np.uint8), "xz"),
             _c(rng.integers(-64, 64, (10, 5)).astype(np.int8), "w"),
             _c(rng.uniform(0.002, 0.02, 5).astype(np.float32), "ws"), _c(np.zeros(5, np.int8), "wz"),
             _c(np.array(0.03, np.float32), "ys"), _c(np.array(130, np.uint8), "yz")]
    nodes = [helper.make_node("QuantizeLinear", ["x", "xs", "xz"], ["xq"]),
             helper.make_node("DequantizeLinear", ["xq", "xs", "xz"], ["xd"]),
             helper.make_node("DequantizeLinear", ["w", "ws", "wz"], ["wd"], axis=1),
             helper.make_node("MatMul", ["xd", "wd"], ["m"]),
             helper.make_node("QuantizeLinear", ["m", "ys", "yz"], ["y"])]
    g = helper.make_graph(nodes, "qdq_matmul", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 10])],
                          [helper.make_tensor_value_info("y", TensorProto.UINT8, None)], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def _qdq_gemm_float_out() -> onnx.ModelProto:
    """DQ -> Gemm (transB, int32 bias) with no Q after it: onnxruntime fuses it to QGemm with a float output."""
    rng = np.random.default_rng(9)
    inits = [_c(np.array(0.05, np.float32), "xs"), _c(np.array(128, np.uint8), "xz"),
             _c(rng.integers(-64, 64, (6, 10)).astype(np.int8), "w"), _c(np.array(0.01, np.float32), "ws"),
             _c(np.array(0, np.int8), "wz"), _c(rng.integers(-900, 900, 6).astype(np.int32), "b"),
             _c(np.array(0.0005, np.float32), "bs")]
    nodes = [helper.make_node("QuantizeLinear", ["x", "xs", "xz"], ["xq"]),
             helper.make_node("DequantizeLinear", ["xq", "xs", "xz"], ["xd"]),
             helper.make_node("DequantizeLinear", ["w", "ws", "wz"], ["wd"]),
             helper.make_node("DequantizeLinear", ["b", "bs"], ["bd"]),
             helper.make_node("Gemm", ["xd", "wd", "bd"], ["y"], transB=1)]
    g = helper.make_graph(nodes, "qdq_gemm", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, 10])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


@pytest.mark.parametrize("case", ["qgemm", "qgemm_float_out", "qdq_matmul", "qdq_gemm_float_out"])
def test_gemm_and_matmul_forms_match_onnxruntime(case: str, tmp_path: Path) -> None:
    m = {"qdq_matmul": _qdq_matmul, "qdq_gemm_float_out": _qdq_gemm_float_out}.get(
        case, lambda: _gemm_model(case == "qgemm_float_out"))()
    path = tmp_path / "m.onnx"
    onnx.save(m, str(path))
    shape = (2, 3, 10) if case == "qdq_matmul" else (3, 10)  # (x of the others: [3, 10])
    x = np.random.default_rng(8).standard_normal(shape).astype(np.float32) * 4
    got, _ = _compile_run(path, x)
    assert np.array_equal(got, _ort(path, x))
    ops = [n.op for n in load(path).nodes]
    assert "MatMulInteger" in ops and "MatMul" not in ops and "Gemm" not in ops, ops


def test_qlinear_concat_matches_onnxruntime(tmp_path: Path) -> None:
    """Inputs of the output's scale and zero point are copied, the others requantized (int8, axis 1)."""
    inits = [_c(np.array(0.07, np.float32), "ys"), _c(np.array(-3, np.int8), "yz"),
             _c(np.array(0.05, np.float32), "s1"), _c(np.array(10, np.int8), "z1"),
             _c(np.array(0.07, np.float32), "s2"), _c(np.array(-3, np.int8), "z2")]
    node = helper.make_node("QLinearConcat", ["ys", "yz", "a", "s1", "z1", "b", "s2", "z2", "a", "s2", "z1"], ["y"],
                            domain="com.microsoft", axis=1)
    g = helper.make_graph([node], "qc", [helper.make_tensor_value_info("a", TensorProto.INT8, [2, 3, 5]),
                                         helper.make_tensor_value_info("b", TensorProto.INT8, [2, 4, 5])],
                          [helper.make_tensor_value_info("y", TensorProto.INT8, None)], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)],
                          ir_version=8)
    path = tmp_path / "m.onnx"
    onnx.save(m, str(path))
    rng = np.random.default_rng(2)
    feeds = {"a": rng.integers(-128, 128, (2, 3, 5)).astype(np.int8), "b": rng.integers(-128, 128, (2, 4, 5)).astype(np.int8)}
    want = rt.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, feeds)[0]
    out = tmp_path / "out"
    compile_model(CompileOptions(model=path, out=out, target="host"))
    got, _ = run_graph(out, feeds)
    assert np.array_equal(got["output_0"], want)
