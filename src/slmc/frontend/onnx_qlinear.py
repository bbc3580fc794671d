"""QOperator ONNX nodes -> slmc's integer IR operators (the importer calls `lower` for each).

Each lowering computes what onnxruntime's CPU kernel computes, in its order (ir/op_rules_quant.py,
reference/quant_ops.py, kernels/onnx_quant.py):
- QLinearConv(x, xs, xz, w, ws, wz, ys, yz, B) -> ConvInteger(x, w, xz, wz) -> Requantize(acc, xs * ws / ys, yz, B)
  (per channel where ws has one value per output channel);
- QLinearMatMul(a, as, az, b, bs, bz, ys, yz) -> MatMulInteger -> Requantize(acc, as * bs / ys, yz) (per column);
- com.microsoft QGemm(a, as, az, b, bs, bz, C, ys, yz) -> MatMulInteger (B transposed first where transB) ->
  Requantize(acc, alpha * as * bs / ys, yz, C), or, without ys, float((acc + C)) * (alpha * as * bs);
- com.microsoft QLinearGlobalAveragePool(x, xs, xz, ys, yz) -> QLinearGlobalAveragePool(x, xs / (ys * size), xz, yz);
- com.microsoft QLinearAdd(a, as, az, b, bs, bz, cs, cz), constant parameters, one shape -> QLinearAdd(a, b, p),
  p the fp32 constants of onnxruntime's AVX2 kernel (reference/quant_ops.py); operands of two shapes (a
  broadcast) are expanded first, in the order onnxruntime's broadcast loop passes them to that kernel;
- com.microsoft QLinearConcat -> Concat of the inputs, those of other scales or zero points requantized.
The multipliers are fp32 Mul/Div nodes over the scales (folded to constants when the scales are), so the
integer path keeps one fp32 multiply per output, as onnxruntime's does. QDQ models reach these after
frontend/onnx_qdq.py has fused their DequantizeLinear -> op -> QuantizeLinear groups."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from slmc.errors import SlmcError
from slmc.ir import DType, Value
from slmc.ir.op_rules import quote

__all__ = ["handles", "lower", "refuse_quantized", "canonical_quantize"]

MS = "com.microsoft"
LOWERED = {("", "QLinearConv"), ("", "QLinearMatMul"), (MS, "QGemm"), (MS, "QLinearGlobalAveragePool"),
           (MS, "QLinearAdd"), (MS, "QLinearConcat"), (MS, "QLinearMul"), (MS, "QLinearSigmoid"),
           (MS, "QLinearLeakyRelu"), (MS, "QLinearSoftmax"), (MS, "QLinearAveragePool"),
           (MS, "QLinearWhere"), (MS, "MatMulIntegerToFloat")}  # (7 last: *_ext.py)
# the quantized operators of onnxruntime's quantizer and contrib domain that slmc does not lower
OTHER_QUANTIZED = frozenset("""QLinearReduceMean QLinearLookupTable QAttention QEmbedLayerNormalization
QOrderedMatMul DynamicQuantizeMatMul DynamicQuantizeLSTM QLinearConvTranspose QuantizeBFP
DequantizeBFP MatMulNBits QMoE GatherBlockQuantized""".split())
FIX = ("slmc lowers QuantizeLinear, DequantizeLinear, QLinearConv, QLinearMatMul, ConvInteger, MatMulInteger, "
       "QGemm, QLinearGlobalAveragePool, QLinearAdd, QLinearConcat, QLinearMul, QLinearSigmoid, QLinearLeakyRelu, "
       "QLinearSoftmax, QLinearAveragePool, QLinearWhere and MatMulIntegerToFloat to integer kernels: quantize the model with "
       "quantize_static(..., "
       "op_types_to_quantize=['Conv', 'MatMul', 'Gemm', 'GlobalAveragePool']) or leave that operator in float")

Add = Callable[[str, "list[Value | None]", "list[str]", "dict[str, Any]", str], "list[Value]"]


def _domain(domain: str) -> str:
    return "" if domain in ("", "ai.onnx") else domain


def handles(domain: str, op: str) -> bool:
    return (_domain(domain), op) in LOWERED


def refuse_quantized(domain: str, op: str, name: str) -> SlmcError | None:
    """The error for a quantized operator slmc has no integer lowering for (None for any other operator)."""
    if op not in OTHER_QUANTIZED:
        return None
    full = f"{domain}.{op}" if _domain(domain) else op
    return SlmcError(f"unsupported quantized ONNX operator {quote(full)} (node {quote(name)})", FIX)


def _one(v: Value | None, op: str, name: str, what: str) -> Value:
    if v is None:
        raise SlmcError(f"{op} node {quote(name)} has no {what}", "the model is malformed: export it again")
    if v.type.numel != 1:
        raise SlmcError(f"{op} node {quote(name)}: its {what} {list(v.shape)} is not one value (per-tensor)",
                        f"slmc's {op} takes a per-tensor {what}; only the weights may be quantized per channel")
    return v


def _per(v: Value | None, n: int, op: str, name: str, what: str) -> Value:
    if v is None:
        raise SlmcError(f"{op} node {quote(name)} has no {what}", "the model is malformed: export it again")
    if v.type.numel != 1 and v.shape != (n,):
        raise SlmcError(f"{op} node {quote(name)}: its {what} {list(v.shape)} is neither one value nor [{n}]",
                        f"quantize the weights per tensor or per output channel (a 1-D {what} of {n} values)")
    return v


class _Lower:
    def __init__(self, op: str, name: str, ins: list[Value | None], add: Add,
                 const: Callable[[str, np.ndarray], Value]) -> None:
        self.op, self.name, self.ins, self._add, self.const = op, name, ins + [None] * 9, add, const
        self.k = 0

    def add(self, op: str, ins: list[Value | None], attrs: dict[str, Any] | None = None,
            out: str | None = None) -> Value:
        self.k += 1
        tag = f"{self.name}.{op.lower()}{self.k}"
        return self._add(op, ins, [out or tag], attrs or {}, tag)[0]

    def multiplier(self, num: list[Value], den: Value | None) -> Value:
        """The product of `num` (left to right), divided by `den`: fp32, in onnxruntime's order."""
        m = num[0]
        for v in num[1:]:
            m = self.add("Mul", [m, v])
        return m if den is None else self.add("Div", [m, den])


def lower(op: str, name: str, ins: list[Value | None], attrs: dict[str, Any], out: str, add: Add,
          const: Callable[[str, np.ndarray], Value], value_of: Callable[[Value], "np.ndarray | None"]) -> Value:
    """The IR value computing the node's output (named `out`)."""
    q = _Lower(op, name, ins, add, const)
    if op == "QLinearConv":
        x, xs, xz, w, ws, wz, ys, yz, b = q.ins[:9]
        if x is None or w is None or len(w.shape) < 3:
            raise SlmcError(f"QLinearConv node {quote(name)} has no input or 3-D+ weights", "the model is malformed")
        m = w.shape[0]
        conv = {k: v for k, v in attrs.items()
                if k in ("auto_pad", "dilations", "group", "kernel_shape", "pads", "strides")}
        conv["kernel_shape"] = list(w.shape[2:])
        acc = q.add("ConvInteger", [x, w, _one(xz, op, name, "input zero point"),
                                    _per(wz, m, op, name, "weight zero point")], conv)
        mult = q.multiplier([_one(xs, op, name, "input scale"), _per(ws, m, op, name, "weight scale")],
                            _one(ys, op, name, "output scale"))
        return q.add("Requantize", [acc, mult, _one(yz, op, name, "output zero point"), b], {"axis": 1}, out)
    if op == "QLinearMatMul":
        a, as_, az, b, bs, bz, ys, yz = q.ins[:8]
        if b is None or len(b.shape) < 2:
            raise SlmcError(f"QLinearMatMul node {quote(name)}: B must have rank >= 2", "export the model again")
        n = b.shape[-1]
        acc = q.add("MatMulInteger", [a, b, _one(az, op, name, "A zero point"), _per(bz, n, op, name, "B zero point")])
        mult = q.multiplier([_one(as_, op, name, "A scale"), _per(bs, n, op, name, "B scale")],
                            _one(ys, op, name, "output scale"))
        return q.add("Requantize", [acc, mult, _one(yz, op, name, "output zero point")], {"axis": -1}, out)
    if op == "QGemm":
        return _qgemm(q, attrs, out)
    if op == "QLinearGlobalAveragePool":
        x, xs, xz, ys, yz = q.ins[:5]
        if x is None or len(x.shape) < 3:
            raise SlmcError(f"QLinearGlobalAveragePool node {quote(name)}: input must be [N, C, spatial...]",
                            "export the model again")
        size = q.const(f"{name}.size", np.array(float(np.prod(x.shape[2:])), np.float32))
        den = q.add("Mul", [_one(ys, op, name, "output scale"), size])
        mult = q.add("Div", [_one(xs, op, name, "input scale"), den])
        return q.add("QLinearGlobalAveragePool", [x, mult, _one(xz, op, name, "input zero point"),
                                                  _one(yz, op, name, "output zero point")],
                     {"channels_last": int(attrs.get("channels_last", 0))}, out)
    if op == "QLinearAdd":
        return _qadd(q, value_of, out)
    if op == "QLinearConcat":
        return _qconcat(q, attrs, value_of, out)
    from slmc.frontend import onnx_qlinear_ext

    if op in onnx_qlinear_ext.OPS:
        return onnx_qlinear_ext.lower(q, attrs, value_of, out)
    raise AssertionError(op)


def _qconcat(q: _Lower, attrs: dict[str, Any], value_of: Callable[[Value], "np.ndarray | None"], out: str) -> Value:
    """Each input whose scale and zero point are the output's is copied, the others requantized element by
    element as onnxruntime's lookup table does: table[x] = QuantizeLinear(DequantizeLinear(x)), which is the
    two standalone kernels (bit for bit: the table is built with the same fp32 operations)."""
    ins = [v for v in q.ins if v is not None]
    if len(ins) < 5 or (len(ins) - 2) % 3:
        raise SlmcError(f"QLinearConcat node {quote(q.name)} has {len(ins)} inputs, not (y_scale, y_zero_point) and "
                        "(tensor, scale, zero point) per input", "the model is malformed: export it again")
    ys, yz = _one(ins[0], q.op, q.name, "output scale"), _one(ins[1], q.op, q.name, "output zero point")
    parts: list[Value | None] = []
    for k in range(2, len(ins), 3):
        x = ins[k]
        xs, xz = _one(ins[k + 1], q.op, q.name, "input scale"), _one(ins[k + 2], q.op, q.name, "input zero point")
        same = [value_of(v) for v in (xs, ys, xz, yz)]
        if all(v is not None for v in same) and same[0].tobytes() == same[1].tobytes() \
                and same[2].reshape(()) == same[3].reshape(()):  # type: ignore[union-attr]
            parts.append(x)
        else:
            parts.append(q.add("QuantizeLinear", [q.add("DequantizeLinear", [x, xs, xz]), ys, yz]))
    return q.add("Concat", parts, {"axis": int(attrs.get("axis", 0))}, out)


def _qadd(q: _Lower, value_of: Callable[[Value], "np.ndarray | None"], out: str) -> Value:
    from slmc.reference.quant_ops import qlinear_add_params

    a, b = q.ins[0], q.ins[3]
    params = []
    for i, what in ((1, "A scale"), (2, "A zero point"), (4, "B scale"), (5, "B zero point"), (6, "output scale"),
                    (7, "output zero point")):
        v = value_of(_one(q.ins[i], q.op, q.name, what))
        if v is None:
            raise SlmcError(f"QLinearAdd node {quote(q.name)} takes its {what} from run-time data",
                            "slmc's QLinearAdd needs constant scales and zero points: export them as initializers")
        params.append(v.reshape(()).item())
    if a is None or b is None:
        raise SlmcError(f"QLinearAdd node {quote(q.name)} lacks an operand", "the model is malformed: export it again")
    if a.type != b.type:  # a broadcast: both expanded; onnxruntime puts first the operand that varies within
        shape = tuple(np.broadcast_shapes(a.shape, b.shape))  # its innermost span (B when A is one value there)
        last = [1 if not v.shape else v.shape[-1] for v in (a, b)]
        if shape and last[0] == 1 and last[1] != 1:
            a, b, params = b, a, params[2:4] + params[0:2] + params[4:]
        a, b = (v if v.shape == shape else q.add("Expand", [v], {"shape": list(shape)}) for v in (a, b))
    p = q.const(f"{q.name}.params", qlinear_add_params(*params))
    return q.add("QLinearAdd", [a, b, p], {}, out)


def _qgemm(q: _Lower, attrs: dict[str, Any], out: str) -> Value:
    op, name = q.op, q.name
    a, as_, az, b, bs, bz, c, ys, yz = q.ins[:9]
    if a is None or b is None or len(a.shape) != 2 or len(b.shape) != 2:
        raise SlmcError(f"QGemm node {quote(name)}: A and B must be matrices", "export the model again")
    if int(attrs.get("transA", 0)):
        a = q.add("Transpose", [a], {"perm": [1, 0]})
    if int(attrs.get("transB", 0)):
        b = q.add("Transpose", [b], {"perm": [1, 0]})
    n = b.shape[1]
    if c is not None and c.type.numel not in (1, n):
        raise SlmcError(f"QGemm node {quote(name)}: its bias C {list(c.shape)} is not per column",
                        "use a bias of one value per output column")
    acc = q.add("MatMulInteger", [a, b, _one(az, op, name, "A zero point"), _per(bz, n, op, name, "B zero point")])
    alpha = float(attrs.get("alpha", 1.0))
    num = [_one(as_, op, name, "A scale"), _per(bs, n, op, name, "B scale")]
    if alpha != 1.0:
        num.insert(0, q.const(f"{name}.alpha", np.array(alpha, np.float32)))
    if ys is None:  # float output: float(acc + C) * (alpha * as * bs)
        if c is not None:
            acc = q.add("Add", [acc, q.add("Reshape", [c], {"shape": [-1], "allowzero": 0})])
        f = q.add("Cast", [acc], {"to": DType.F32})
        return q.add("Mul", [f, q.multiplier(num, None)], {}, out)
    mult = q.multiplier(num, _one(ys, op, name, "output scale"))
    return q.add("Requantize", [acc, mult, _one(yz, op, name, "output zero point"), c], {"axis": -1}, out)


def canonical_quantize(op: str, ins: list[Value | None], attrs: dict[str, Any], const: Callable[[str, np.ndarray], Value],
                       add: Add, name: str) -> tuple[list[Value | None], dict[str, Any]]:
    """QuantizeLinear/DequantizeLinear in one form: a zero point always present (uint8 0, or opset 21's
    output_dtype, where absent), the attributes that change nothing for integer types dropped; blocked
    quantization's scale and zero point gathered to one value per element (x's shape)."""
    from slmc.frontend.onnx_read import dtype_of

    attrs = dict(attrs)
    attrs.pop("saturate", None)  # (float8 only)
    to = attrs.pop("output_dtype", 0)
    if op == "QuantizeLinear" and (len(ins) < 3 or ins[2] is None):
        dt = dtype_of(to, f"the output_dtype of QuantizeLinear node {quote(name)}") if to else DType.U8
        ins = [ins[0], ins[1], const(f"{name}.zero_point", np.zeros((), dt.np))]
    attrs.pop("precision", None)
    block = attrs.pop("block_size", 0)
    x = ins[0]
    if block and x is not None and isinstance(block, int) and block > 0 and x.shape:
        axis = int(attrs.get("axis", 1))
        if -len(x.shape) <= axis < len(x.shape):
            n = x.shape[axis]
            idx = const(f"{name}.blocks", np.arange(n, dtype=np.int64) // block)
            ins = [x] + [v if v is None or len(v.shape) != len(x.shape) else  # (a scalar zero point stays one)
                         add("Gather", [v, idx], [f"{name}.per_element{i}"], {"axis": axis}, f"{name}.per_element{i}")[0]
                         for i, v in enumerate(ins[1:3], 1)]
            return ins, attrs
    if block:
        attrs["block_size"] = block  # (ir/op_rules_quant.py refuses what it cannot read)
    return ins, attrs
