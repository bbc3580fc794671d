"""Operator rules (ir/op_rules.py) for the quantized operators onnxruntime runs through a lookup table or a
scalar loop (frontend/onnx_qlinear_ext.py lowers com.microsoft QLinearSigmoid, QLinearLeakyRelu, QLinearSoftmax,
QLinearMul and QLinearAveragePool to these; reference/quant_lut_ops.py is their numpy twin):
QLinearLookup(x, table[256]), QLinearMul(a, b, a_zp, b_zp, ratio, c_zp), QLinearSoftmax(x, table f32[256],
y_scale f32, y_zp) along the last axis, QuantizeAfterZp(x f32, scale f32, zp)."""

from __future__ import annotations

from slmc.ir.op_rules import Ctx, T
from slmc.ir.types import DType, TensorType

EIGHT = (DType.I8, DType.U8)


def _eight(c: Ctx, t: TensorType, what: str) -> None:
    if t.dtype not in EIGHT:
        raise c.fail(f"{what} is {t.dtype.short}", "takes int8 or uint8 data")


def _one(c: Ctx, i: int, dtype: "DType | tuple[DType, ...]", what: str) -> None:
    t = c.x(i)
    if t.numel != 1 or t.dtype not in (dtype if isinstance(dtype, tuple) else (dtype,)):
        raise c.fail(f"{what} {t.dtype.short}{list(t.shape)} is not one value of the right type")


def lookup(c: Ctx) -> list[TensorType]:
    x, table = c.x(0), c.x(1)
    _eight(c, x, "input")
    if table.dtype != x.dtype or table.numel != 256:
        raise c.fail(f"table {table.dtype.short}{list(table.shape)} is not 256 values of {x.dtype.short}")
    return [T(x.shape, x.dtype)]


def mul(c: Ctx) -> list[TensorType]:
    a, b = c.x(0), c.x(1)
    _eight(c, a, "A")
    if b.dtype != a.dtype or b.shape != a.shape:
        raise c.fail(f"multiplies {a.dtype.short}{list(a.shape)} and {b.dtype.short}{list(b.shape)}",
                     "slmc's QLinearMul takes two 8-bit tensors of one type and shape (the lowering expands)")
    _one(c, 2, a.dtype, "A zero point")
    _one(c, 3, a.dtype, "B zero point")
    _one(c, 4, DType.F32, "multiplier")
    _one(c, 5, a.dtype, "output zero point")
    return [T(a.shape, a.dtype)]


def softmax(c: Ctx) -> list[TensorType]:
    x, table = c.x(0), c.x(1)
    _eight(c, x, "input")
    if not x.shape:
        raise c.fail("input is a scalar", "give the softmax an axis")
    if table.dtype != DType.F32 or table.numel != 256:
        raise c.fail(f"table {table.dtype.short}{list(table.shape)} is not 256 float32 values")
    _one(c, 2, DType.F32, "output scale")
    _one(c, 3, x.dtype, "output zero point")
    return [T(x.shape, x.dtype)]


def quantize_after_zp(c: Ctx) -> list[TensorType]:
    x = c.x(0)
    if x.dtype != DType.F32:
        raise c.fail(f"quantizes {x.dtype.short} data", "takes float32 data")
    _one(c, 1, DType.F32, "scale")
    _one(c, 2, EIGHT, "zero point")
    return [T(x.shape, c.x(2).dtype)]
