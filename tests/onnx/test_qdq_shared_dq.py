"""A DequantizeLinear with two consumers in a QDQ model with int8 activations (issue 20).

onnxruntime on x86-64 gives each consumer its own copy of the DequantizeLinear (EnsureUniqueDQForNodeUnit), then
turns the int8 QuantizeLinear -> DequantizeLinear pairs whose Q has a single output edge into uint8
(QDQS8ToU8Transformer), and does not let int8 activations into QLinearMatMul / QLinearConv: a MatMul reading the
shared value stays float (DequantizeLinear -> float MatMul -> QuantizeLinear), and so does an Add mixing it with
a converted input. slmc's QDQ lowering (frontend/onnx_qdq.py) must keep the same nodes float and match
onnxruntime bit for bit; with uint8 activations everything fuses. The nodes onnxruntime fuses are read from its
own optimized graph (SessionOptions.optimized_model_filepath), not restated here."""

from __future__ import annotations

import platform
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from slmc.frontend import onnx_qdq

sys.path.append(str(Path(__file__).parent))  # the helper modules next to this file
rt = pytest.importorskip("onnxruntime")

from cnn_nets import compile_run, ort_output  # noqa: E402

pytestmark = pytest.mark.skipif(platform.machine().lower() not in ("x86_64", "amd64"),
                                reason="onnxruntime's int8 QDQ fusion rules are x86-64's (other CPUs allow int8 "
                                       "activations into QLinearMatMul)")
TARGETS = ("mm_a", "mm_b", "add_r")


def _model(act: int) -> onnx.ModelProto:
    """x -> Q -> DQ (read by mm_a and add_r) ; mm_a(W1) -> Q -> DQ -> mm_b(W2) -> Q -> DQ -> add_r -> Q -> DQ -> y."""
    rng = np.random.default_rng(11)
    zt = np.int8 if act == TensorProto.INT8 else np.uint8
    z = (lambda v: np.array(v if zt is np.int8 else v + 128, zt))
    c = numpy_helper.from_array
    inits = [c(np.array(0.04, np.float32), "xs"), c(z(3), "xz"),
             c(rng.integers(-64, 64, (8, 8)).astype(np.int8), "w1"), c(np.array(0.02, np.float32), "w1s"),
             c(np.array(0, np.int8), "w1z"),
             c(rng.integers(-64, 64, (8, 8)).astype(np.int8), "w2"),
             c(rng.uniform(0.01, 0.03, 8).astype(np.float32), "w2s"), c(np.zeros(8, np.int8), "w2z"),
             c(np.array(0.05, np.float32), "as"), c(z(-5), "az"), c(np.array(0.06, np.float32), "bs"),
             c(z(2), "bz"), c(np.array(0.07, np.float32), "rs"), c(z(-1), "rz")]
    nodes = [helper.make_node("QuantizeLinear", ["x", "xs", "xz"], ["xq"]),
             helper.make_node("DequantizeLinear", ["xq", "xs", "xz"], ["xd"]),
             helper.make_node("DequantizeLinear", ["w1", "w1s", "w1z"], ["w1d"]),
             helper.make_node("MatMul", ["xd", "w1d"], ["a"], name="mm_a"),
             helper.make_node("QuantizeLinear", ["a", "as", "az"], ["aq"]),
             helper.make_node("DequantizeLinear", ["aq", "as", "az"], ["ad"]),
             helper.make_node("DequantizeLinear", ["w2", "w2s", "w2z"], ["w2d"], axis=1),
             helper.make_node("MatMul", ["ad", "w2d"], ["b"], name="mm_b"),
             helper.make_node("QuantizeLinear", ["b", "bs", "bz"], ["bq"]),
             helper.make_node("DequantizeLinear", ["bq", "bs", "bz"], ["bd"]),
             helper.make_node("Add", ["xd", "bd"], ["r"], name="add_r"),
             helper.make_node("QuantizeLinear", ["r", "rs", "rz"], ["rq"]),
             helper.make_node("DequantizeLinear", ["rq", "rs", "rz"], ["y"])]
    g = helper.make_graph(nodes, "shared_dq", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 6, 8])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def _ort_fused(path: Path, tmp: Path) -> dict[str, str]:
    so = rt.SessionOptions()
    so.graph_optimization_level = rt.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    so.optimized_model_filepath = str(tmp / "ort_opt.onnx")
    rt.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    return {n.name: n.op_type for n in onnx.load(str(tmp / "ort_opt.onnx")).graph.node if n.name in TARGETS}


@pytest.mark.parametrize("act", ["int8", "uint8"])
def test_shared_dequantize_keeps_what_onnxruntime_keeps_float(act: str, tmp_path: Path) -> None:
    m = _model(TensorProto.INT8 if act == "int8" else TensorProto.UINT8)
    path = tmp_path / "m.onnx"
    onnx.save(m, str(path))
    ours = {n.name: n.op_type for n in onnx_qdq.fuse(m).graph.node if n.name in TARGETS}
    theirs = _ort_fused(path, tmp_path)
    assert ours == theirs
    if act == "int8":  # the MatMul reading the shared int8 value is float in both
        assert ours["mm_a"] == "MatMul" and ours["mm_b"] == "QLinearMatMul", ours
    else:
        assert ours == {"mm_a": "QLinearMatMul", "mm_b": "QLinearMatMul", "add_r": "QLinearAdd"}, ours
    rng = np.random.default_rng(4)
    x = (rng.standard_normal((1, 6, 8)) * 2).astype(np.float32)
    got, _ = compile_run(path, x)
    assert np.array_equal(got, ort_output(path, x))
