"""Hand-written one-operator models of the com.microsoft quantized operators slmc lowers through
frontend/onnx_qlinear_ext.py (QLinearSigmoid, QLinearLeakyRelu, QLinearSoftmax, QLinearMul, QLinearAveragePool),
in the QOperator form and in the QDQ form onnxruntime fuses into them, with random 8-bit scales and zero points."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

MS = "com.microsoft"
TT = {np.int8: TensorProto.INT8, np.uint8: TensorProto.UINT8}


def _c(arr: np.ndarray, name: str) -> onnx.TensorProto:
    return numpy_helper.from_array(arr, name)


def _params(rng: np.random.Generator, dt: type, prefix: str, scale: "float | None" = None) -> list[onnx.TensorProto]:
    info = np.iinfo(dt)
    s = np.float32(scale if scale is not None else rng.uniform(0.004, 0.08))
    z = np.array(rng.integers(info.min, info.max + 1), dt)
    return [_c(np.array(s, np.float32), f"{prefix}s"), _c(z, f"{prefix}z")]


def _model(nodes: list, inits: list, inputs: list, out_type: int, opset: int = 17) -> onnx.ModelProto:
    g = helper.make_graph(nodes, "m", inputs, [helper.make_tensor_value_info("y", out_type, None)], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset), helper.make_opsetid(MS, 1)],
                             ir_version=8)


SHAPES = {"QLinearSigmoid": [(2, 3, 17)], "QLinearLeakyRelu": [(2, 3, 17)], "QLinearSoftmax": [(2, 5, 33)],
          "QLinearMul": [(2, 3, 17), (3, 17)], "QLinearAveragePool": [(1, 3, 9, 7)]}
POOLS = [dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
         dict(kernel_shape=[3, 3], pads=[1, 1, 1, 1], count_include_pad=1),
         dict(kernel_shape=[2, 2], ceil_mode=1, strides=[2, 2]), dict(kernel_shape=[9, 7])]


def qoperator(op: str, dt: type, seed: int, variant: int = 0) -> tuple[onnx.ModelProto, dict[str, np.ndarray]]:
    """One QOperator node on 8-bit inputs (feeds returned: random codes over the whole range)."""
    rng = np.random.default_rng(seed)
    info = np.iinfo(dt)
    shapes = SHAPES[op]
    inputs = [helper.make_tensor_value_info(n, TT[dt], list(s)) for n, s in zip("ab", shapes)]
    feeds = {n: rng.integers(info.min, info.max + 1, s).astype(dt) for n, s in zip("ab", shapes)}
    attrs: dict = {}
    if op == "QLinearMul":
        inits = _params(rng, dt, "a") + _params(rng, dt, "b") + _params(rng, dt, "y")
        ins = ["a", "as", "az", "b", "bs", "bz", "ys", "yz"]
    else:
        ys = (1 / 256 if variant % 2 == 0 else None) if op == "QLinearSoftmax" else None
        inits = _params(rng, dt, "x") + _params(rng, dt, "y", ys)
        if op == "QLinearSoftmax" and dt == np.uint8 and variant % 2 == 0:
            inits[-1] = _c(np.array(0, dt), "yz")
        ins = ["a", "xs", "xz", "ys", "yz"]
        if op == "QLinearLeakyRelu":
            attrs = {"alpha": float(rng.uniform(0.01, 0.3))}
        elif op == "QLinearSoftmax":
            attrs = [{"opset": 13, "axis": -1}, {"opset": 13, "axis": 1}, {"opset": 11, "axis": 1}][variant % 3]
        elif op == "QLinearAveragePool":
            attrs = POOLS[variant % len(POOLS)]
    node = helper.make_node(op, ins, ["y"], domain=MS, **attrs)
    return _model([node], inits, inputs, TT[dt]), feeds


def qdq(op: str, dt: type, seed: int) -> tuple[onnx.ModelProto, dict[str, np.ndarray]]:
    """x (float) -> Q -> DQ -> op (Mul: with a second DQ'd operand, a constant) -> Q -> y (8-bit): the form
    onnxruntime's QDQ transformer fuses into the QOperator node."""
    rng = np.random.default_rng(seed)
    info = np.iinfo(dt)
    shape = [2, 3, 9, 7] if op == "AveragePool" else [2, 5, 33]
    inits = _params(rng, dt, "x") + _params(rng, dt, "y", 1 / 256 if op == "Softmax" else None)
    nodes = [helper.make_node("QuantizeLinear", ["x", "xs", "xz"], ["xq"]),
             helper.make_node("DequantizeLinear", ["xq", "xs", "xz"], ["xd"])]
    ins = ["xd"]
    attrs: dict = {"Softmax": {"axis": -1}, "LeakyRelu": {"alpha": 0.1},
                   "AveragePool": {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1], "strides": [2, 2]}}.get(op, {})
    if op == "Mul":
        inits += _params(rng, dt, "w") + [_c(rng.integers(info.min, info.max + 1, [33]).astype(dt), "w")]
        nodes.append(helper.make_node("DequantizeLinear", ["w", "ws", "wz"], ["wd"]))
        ins.append("wd")
    nodes += [helper.make_node(op, ins, ["f"], **attrs), helper.make_node("QuantizeLinear", ["f", "ys", "yz"], ["y"])]
    x = (rng.standard_normal(shape) * 2).astype(np.float32)
    return _model(nodes, inits, [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)], TT[dt]), {"x": x}
