"""The com.microsoft quantized operators onnxruntime runs through a lookup table or its own scalar loop, lowered
to slmc's IR (onnx_qlinear.lower calls `lower` for these; ir/op_rules_quant_lut.py, reference/quant_lut_ops.py,
kernels/onnx_quant_lut.py), each computing what onnxruntime 1.32's CPU kernel computes:
- QLinearSigmoid / QLinearLeakyRelu(x, xs, xz, ys, yz) -> QLinearLookup(x, table): the 256-entry table onnxruntime
  builds at session creation, built here at compile time with the same fp32 operations (constant scales and
  zero points only: onnxruntime too builds it once when they are constant);
- QLinearSoftmax(x, xs, xz, ys, yz; axis, opset) -> QLinearSoftmax(x, table, floor(1 / ys), yz) over the last
  axis: opset < 13 flattens from `axis` (Reshape), opset >= 13 swaps `axis` with the last one (Transpose), as
  onnxruntime does;
- QLinearMul(a, as, az, b, bs, bz, cs, cz) -> QLinearMul(a, b, az, bz, as * bs / cs, cz), operands of two
  shapes expanded to the output's first (the product is symmetric, so onnxruntime's scalar and span
  broadcasting give the same values);
- QLinearAveragePool(x, xs, xz, ys, yz) -> DequantizeLinear -> AveragePool (fp32, in window order) ->
  QuantizeAfterZp (qlinear_pool.cc), or, for a window over the whole plane without pads, onnxruntime's
  QLinearGlobalAveragePool (its own fallback);
- QLinearWhere(c, x, xs, xz, y, ys, yz, zs, zz) -> Where(c, table_x[x], table_y[y]) (qlinear_where.cc): each input
  whose scale and zero point are not the output's goes through onnxruntime's requantization table (each code
  dequantized in fp32, MlasQuantizeLinear); onnxruntime's merge of the two selections (a zero code from one
  side gives the other side's, itself zero there) is the plain select;
- MatMulIntegerToFloat(A, B, a_scale, b_scale, a_zp, b_zp, bias) -> float(MatMulInteger(A, B, a_zp, b_zp)) *
  (a_scale * b_scale) (+ bias): MLAS's scale-bias output processor, each step rounded in fp32 (no fusion)."""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from slmc.errors import SlmcError
from slmc.ir import DType, Value
from slmc.ir.op_rules import quote

__all__ = ["OPS", "lower"]

OPS = frozenset({"QLinearSigmoid", "QLinearLeakyRelu", "QLinearSoftmax", "QLinearMul", "QLinearAveragePool",
                 "QLinearWhere", "MatMulIntegerToFloat"})
EIGHT = (DType.I8, DType.U8)


def _const(q: Any, v: Value | None, what: str, value_of: Callable[[Value], "np.ndarray | None"]) -> np.ndarray:
    if v is None:
        raise SlmcError(f"{q.op} node {quote(q.name)} has no {what}", "the model is malformed: export it again")
    a = value_of(v)
    if a is None:
        raise SlmcError(f"{q.op} node {quote(q.name)} takes its {what} from run-time data",
                        f"slmc's {q.op} needs constant scales and zero points: export them as initializers")
    if a.size != 1:
        raise SlmcError(f"{q.op} node {quote(q.name)}: its {what} {list(a.shape)} is not one value (per-tensor)",
                        f"onnxruntime's {q.op} takes a per-tensor {what}")
    return a.reshape(())


def _x(q: Any) -> Value:
    x = q.ins[0]
    if x is None or x.dtype not in EIGHT:
        raise SlmcError(f"{q.op} node {quote(q.name)}: its input is not int8 or uint8 data",
                        "the model is malformed: export it again")
    return x


def _zero(q: Any, v: Value | None, what: str, value_of: Callable[[Value], "np.ndarray | None"]) -> int:
    return 0 if v is None else int(_const(q, v, what, value_of))


def lower(q: Any, attrs: dict[str, Any], value_of: Callable[[Value], "np.ndarray | None"], out: str) -> Value:
    """q: onnx_qlinear._Lower of the node (its op, name, inputs, add and const)."""
    from slmc.reference import quant_lut_ops as L

    op = q.op
    if op == "QLinearMul":
        return _mul(q, out)
    if op == "QLinearWhere":
        return _where(q, value_of, out)
    if op == "MatMulIntegerToFloat":
        return _matmul_to_float(q, out)
    x = _x(q)
    if op == "QLinearAveragePool":
        return _average_pool(q, x, attrs, out)
    xs = float(_const(q, q.ins[1], "input scale", value_of))
    if op == "QLinearSoftmax":
        return _softmax(q, x, xs, attrs, value_of, out)
    xz = _zero(q, q.ins[2], "input zero point", value_of)
    ys = float(_const(q, q.ins[3], "output scale", value_of))
    yz = _zero(q, q.ins[4], "output zero point", value_of)
    if op == "QLinearSigmoid":
        table = L.sigmoid_table(xs, xz, ys, yz, x.dtype.np)
    else:
        table = L.leaky_relu_table(xs, xz, ys, yz, x.dtype.np, float(attrs.get("alpha", 0.01)))
    return q.add("QLinearLookup", [x, q.const(f"{q.name}.table", table)], {}, out)


def _softmax(q: Any, x: Value, xs: float, attrs: dict[str, Any], value_of: Callable[[Value], "np.ndarray | None"],
             out: str) -> Value:
    from slmc.reference.quant_lut_ops import softmax_table

    rank = len(x.shape)
    opset = int(attrs.get("opset", 13))
    axis = int(attrs.get("axis", 1 if opset < 13 else -1))
    if not rank or not -rank <= axis < rank:
        raise SlmcError(f"QLinearSoftmax node {quote(q.name)}: axis {axis} is out of range for {list(x.shape)}",
                        "the model is malformed: export it again")
    axis %= rank
    ys = _const(q, q.ins[3], "output scale", value_of)
    yz = q.ins[4]
    if yz is None:
        yz = q.const(f"{q.name}.yz", np.zeros((), x.dtype.np))
    else:
        _const(q, yz, "output zero point", value_of)
    yscale = q.const(f"{q.name}.yscale", np.array(math.floor(np.float32(1.0) / np.float32(ys)), np.float32))
    d = math.prod(x.shape[axis:]) if opset < 13 else x.shape[axis]
    if d <= 0:
        return q.add("Identity", [x], {}, out)
    table = q.const(f"{q.name}.table", softmax_table(xs, d, x.dtype == DType.I8))
    if opset < 13:
        if axis == rank - 1:
            return q.add("QLinearSoftmax", [x, table, yscale, yz], {}, out)
        flat = q.add("Reshape", [x], {"shape": [math.prod(x.shape[:axis]), d], "allowzero": 0})
        y = q.add("QLinearSoftmax", [flat, table, yscale, yz])
        return q.add("Reshape", [y], {"shape": list(x.shape), "allowzero": 0}, out)
    if axis == rank - 1:
        return q.add("QLinearSoftmax", [x, table, yscale, yz], {}, out)
    perm = list(range(rank))
    perm[axis], perm[-1] = perm[-1], perm[axis]
    y = q.add("QLinearSoftmax", [q.add("Transpose", [x], {"perm": perm}), table, yscale, yz])
    return q.add("Transpose", [y], {"perm": perm}, out)


def _mul(q: Any, out: str) -> Value:
    a, as_, az, b, bs, bz, cs, cz = q.ins[:8]
    if a is None or b is None or a.dtype not in EIGHT or b.dtype != a.dtype:
        raise SlmcError(f"QLinearMul node {quote(q.name)}: A and B must be 8-bit data of one type",
                        "the model is malformed: export it again")
    for v, what in ((as_, "A scale"), (bs, "B scale"), (cs, "output scale"), (az, "A zero point"),
                    (bz, "B zero point"), (cz, "output zero point")):
        if v is not None and v.type.numel != 1:
            raise SlmcError(f"QLinearMul node {quote(q.name)}: its {what} {list(v.shape)} is not one value "
                            "(per-tensor)", "onnxruntime's QLinearMul takes per-tensor scales and zero points")
        if v is None and "scale" in what:
            raise SlmcError(f"QLinearMul node {quote(q.name)} has no {what}", "the model is malformed: export it again")
    zero = None
    if az is None or bz is None or cz is None:
        zero = q.const(f"{q.name}.zero", np.zeros((), a.dtype.np))
    shape = tuple(np.broadcast_shapes(a.shape, b.shape))
    if a.shape != shape:
        a = q.add("Expand", [a], {"shape": list(shape)})
    if b.shape != shape:
        b = q.add("Expand", [b], {"shape": list(shape)})
    ratio = q.add("Div", [q.add("Mul", [as_, bs]), cs])
    return q.add("QLinearMul", [a, b, az or zero, bz or zero, ratio, cz or zero], {}, out)


def _average_pool(q: Any, x: Value, attrs: dict[str, Any], out: str) -> Value:
    xs, xz, ys, yz = q.ins[1:5]
    if xs is None or ys is None:
        raise SlmcError(f"QLinearAveragePool node {quote(q.name)} lacks a scale", "the model is malformed")
    if int(attrs.get("channels_last", 0)):
        raise SlmcError(f"QLinearAveragePool node {quote(q.name)}: channels_last=1 is not supported",
                        "write the model channels-first (NCHW)")
    if xz is None or yz is None:
        zero = q.const(f"{q.name}.zero", np.zeros((), x.dtype.np))
        xz, yz = xz or zero, yz or zero
    kernel = [int(k) for k in attrs.get("kernel_shape", [])]
    pads = [int(p) for p in attrs.get("pads", [0] * 2 * len(kernel))]
    pool = {k: v for k, v in attrs.items() if k in ("auto_pad", "ceil_mode", "count_include_pad", "kernel_shape",
                                                    "pads", "strides")}
    auto = attrs.get("auto_pad", "NOTSET")
    if kernel == list(x.shape[2:]) and not any(pads) and (auto.decode() if isinstance(auto, bytes) else auto) in (
            "NOTSET", "VALID"):
        size = q.const(f"{q.name}.size", np.array(float(math.prod(x.shape[2:])), np.float32))
        mult = q.add("Div", [xs, q.add("Mul", [ys, size])])
        return q.add("QLinearGlobalAveragePool", [x, mult, xz, yz], {"channels_last": 0}, out)
    if int(attrs.get("count_include_pad", 0)) and int(attrs.get("ceil_mode", 0)):
        raise SlmcError(f"QLinearAveragePool node {quote(q.name)}: count_include_pad=1 with ceil_mode=1 is not "
                        "supported", "onnxruntime divides a window past the end by the kernel size: use ceil_mode=0")
    f = q.add("AveragePool", [q.add("DequantizeLinear", [x, xs, xz])], pool)
    return q.add("QuantizeAfterZp", [f, ys, yz], {}, out)


def _where(q: Any, value_of: Callable[[Value], "np.ndarray | None"], out: str) -> Value:
    from slmc.reference.quant_lut_ops import requantize_table

    c = q.ins[0]
    if c is None or c.dtype != DType.BOOL:
        raise SlmcError(f"QLinearWhere node {quote(q.name)}: its condition is not boolean data",
                        "the model is malformed: export it again")
    zs = float(_const(q, q.ins[7], "output scale", value_of))
    zz = _zero(q, q.ins[8], "output zero point", value_of)
    picked: list[Value] = []
    for k, (v, s, z) in enumerate(((q.ins[1], q.ins[2], q.ins[3]), (q.ins[4], q.ins[5], q.ins[6]))):
        if v is None or v.dtype not in EIGHT or (picked and v.dtype != picked[0].dtype):
            raise SlmcError(f"QLinearWhere node {quote(q.name)}: X and Y must be 8-bit data of one type",
                            "the model is malformed: export it again")
        vs = float(_const(q, s, "XY"[k] + " scale", value_of))
        vz = _zero(q, z, "XY"[k] + " zero point", value_of)
        if np.float32(vs) == np.float32(zs) and vz == zz:  # onnxruntime copies such an input
            picked.append(v)
            continue
        table = q.const(f"{q.name}.table{'xy'[k]}", requantize_table(vs, vz, zs, zz, v.dtype.np))
        picked.append(q.add("QLinearLookup", [v, table]))
    return q.add("Where", [c, *picked], {}, out)


def _matmul_to_float(q: Any, out: str) -> Value:
    a, b, as_, bs, az, bz, bias = q.ins[:7]
    if a is None or b is None or a.dtype not in EIGHT or b.dtype not in EIGHT or len(b.shape) < 2:
        raise SlmcError(f"MatMulIntegerToFloat node {quote(q.name)}: A and B must be 8-bit data, B of rank >= 2",
                        "the model is malformed: export it again")
    n = b.shape[-1]
    for v, what, sizes in ((as_, "A scale", (1,)), (az, "A zero point", (1,)), (bs, "B scale", (1, n)),
                           (bz, "B zero point", (1, n)), (bias, "bias", (n,))):
        if v is None and "scale" in what:
            raise SlmcError(f"MatMulIntegerToFloat node {quote(q.name)} has no {what}",
                            "the model is malformed: export it again")
        if v is not None and (v.type.numel not in sizes or (v.type.numel == n and v.shape[-1:] != (n,))):
            raise SlmcError(f"MatMulIntegerToFloat node {quote(q.name)}: its {what} {list(v.shape)} is neither one "
                            f"value nor one per column of B", "quantize A per tensor and B per tensor or per column")
    az = az or q.const(f"{q.name}.az", np.zeros((), a.dtype.np))
    bz = bz or q.const(f"{q.name}.bz", np.zeros((), b.dtype.np))
    f = q.add("Cast", [q.add("MatMulInteger", [a, b, az, bz])], {"to": DType.F32})
    scale = q.add("Mul", [as_, bs])
    if bias is None:
        return q.add("Mul", [f, scale], {}, out)
    return q.add("Add", [q.add("Mul", [f, scale]), bias], {}, out)
