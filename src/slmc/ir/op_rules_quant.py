"""Operator rules (ir/op_rules.py) for the quantized operators of ONNX's QDQ and QOperator formats
(frontend/onnx_qlinear.py lowers QLinearConv, QLinearMatMul, QGemm and QLinearGlobalAveragePool to these):
QuantizeLinear, DequantizeLinear, ConvInteger, MatMulInteger (ONNX semantics), and slmc's Requantize
(int32 accumulators -> 8-bit, onnxruntime's MlasRequantizeOutput) and QLinearGlobalAveragePool."""

from __future__ import annotations

from slmc.ir.op_rules import Ctx, T
from slmc.ir.types import DType, TensorType

EIGHT = (DType.I8, DType.U8)
QTYPES = (DType.I8, DType.U8, DType.I16, DType.U16)


def _per_axis(c: Ctx, x: TensorType, i: int, what: str) -> None:
    """Input i (a scale or zero point) is a scalar, one value, one value per element of x's `axis`, or one
    per element of x (blocked quantization, after onnx_qlinear.canonical_quantize)."""
    t = c.opt(i)
    if t is None or t.shape == x.shape:
        return
    if c.attrs.get("block_size", 0):
        raise c.fail(f"blocked quantization with block_size {c.attrs['block_size']!r} (axis {c.attrs.get('axis', 1)!r}) "
                     "is not supported by the C kernels", "use a block_size >= 1 along an axis of x, or per-axis scales")
    n = 1
    for d in t.shape:
        n *= d
    if len(t.shape) > 1 or n != 1 and (not x.shape or t.shape[0] != x.shape[c.axis(c.int("axis", 1), len(x.shape))]):
        raise c.fail(f"{what} {list(t.shape)} is neither one value nor one per element of axis "
                     f"{c.attrs.get('axis', 1)} of {list(x.shape)}",
                     "quantize per tensor or per axis (a 1-D scale and zero point along `axis`)")


def quantize_linear(c: Ctx) -> list[TensorType]:
    x, s, zp = c.x(0), c.x(1), c.opt(2)
    if x.dtype != DType.F32 or s.dtype != DType.F32:
        raise c.fail(f"quantizes {x.dtype.short} data with a {s.dtype.short} scale",
                     "QuantizeLinear takes float32 data and a float32 scale")
    out = zp.dtype if zp is not None else DType.U8
    if out not in QTYPES:
        raise c.fail(f"quantizes to {out.short}", "slmc quantizes to int8, uint8, int16 or uint16")
    _per_axis(c, x, 1, "scale")
    _per_axis(c, x, 2, "zero point")
    return [T(x.shape, out)]


def dequantize_linear(c: Ctx) -> list[TensorType]:
    x, s, zp = c.x(0), c.x(1), c.opt(2)
    if x.dtype not in (*QTYPES, DType.I32) or s.dtype != DType.F32:
        raise c.fail(f"dequantizes {x.dtype.short} data with a {s.dtype.short} scale",
                     "DequantizeLinear takes (u)int8, (u)int16 or int32 data and a float32 scale")
    if zp is not None and zp.dtype != x.dtype:
        raise c.fail(f"zero point of type {zp.dtype.short} for {x.dtype.short} data")
    _per_axis(c, x, 1, "scale")
    _per_axis(c, x, 2, "zero point")
    return [T(x.shape, DType.F32)]


def _scalar_zp(c: Ctx, i: int, like: TensorType, what: str, per: int = 0) -> None:
    t = c.opt(i)
    if t is None:
        return
    if t.dtype != like.dtype:
        raise c.fail(f"{what} zero point is {t.dtype.short}, its data {like.dtype.short}")
    n = 1
    for d in t.shape:
        n *= d
    if len(t.shape) > 1 or n != 1 and n != per:
        raise c.fail(f"{what} zero point {list(t.shape)} is neither one value" + (f" nor {per} values" if per else ""),
                     "use a per-tensor zero point" + (" (or one per output channel for the weights)" if per else ""))


def conv_integer(c: Ctx) -> list[TensorType]:
    from slmc.ir.op_rules_tensor import conv

    x, w = c.x(0), c.x(1)
    if x.dtype not in EIGHT or w.dtype not in EIGHT:
        raise c.fail(f"{x.dtype.short} data and {w.dtype.short} weights", "ConvInteger takes 8-bit data and weights")
    _scalar_zp(c, 2, x, "input")
    _scalar_zp(c, 3, w, "weight", w.shape[0] if w.shape else 0)
    inner = Ctx("Conv", c.name, [x, w], {k: v for k, v in c.attrs.items() if k != "out_dtype"}, 1, None)
    return [T(conv(inner)[0].shape, DType.I32)]


def matmul_integer(c: Ctx) -> list[TensorType]:
    a, b = c.x(0), c.x(1)
    if a.dtype not in EIGHT or b.dtype not in EIGHT:
        raise c.fail(f"{a.dtype.short} and {b.dtype.short} operands", "MatMulInteger takes 8-bit operands")
    if len(a.shape) < 2 or len(b.shape) < 2:
        raise c.fail(f"operands {list(a.shape)} and {list(b.shape)} must have rank >= 2")
    if a.shape[-1] != b.shape[-2]:
        raise c.fail(f"inner dimensions differ: {list(a.shape)} @ {list(b.shape)}")
    if len(b.shape) > 2 and b.shape[:-2] != a.shape[:-2]:
        raise c.fail(f"batch dimensions of {list(a.shape)} @ {list(b.shape)} differ",
                     "slmc's MatMulInteger takes a 2-D B or a B with A's batch dimensions")
    _scalar_zp(c, 2, a, "A's")
    _scalar_zp(c, 3, b, "B's", b.shape[-1])
    return [T((*a.shape[:-1], b.shape[-1]), DType.I32)]


def requantize(c: Ctx) -> list[TensorType]:
    """Requantize(acc int32, multiplier f32 [1 or C], y_zero_point, bias int32 [1 or C]?): axis 1 is C."""
    acc, m, zp, b = c.x(0), c.x(1), c.x(2), c.opt(3)
    if acc.dtype != DType.I32 or m.dtype != DType.F32 or zp.dtype not in EIGHT:
        raise c.fail("takes int32 accumulators, a float32 multiplier and an 8-bit zero point")
    ch = acc.shape[c.axis(c.int("axis", 1), len(acc.shape))] if acc.shape else 1
    for t, what in ((m, "multiplier"), (b, "bias")):
        if t is not None and t.numel not in (1, ch):
            raise c.fail(f"{what} {list(t.shape)} is neither one value nor {ch}")
    return [T(acc.shape, zp.dtype)]


def qlinear_global_average_pool(c: Ctx) -> list[TensorType]:
    """(x, multiplier f32 [1], x_zero_point, y_zero_point): the mean over the spatial axes, kept."""
    x = c.x(0)
    if x.dtype not in EIGHT or len(x.shape) < 3:
        raise c.fail(f"input {x.dtype.short}{list(x.shape)}", "takes 8-bit data [N, C, spatial...]")
    if c.int("channels_last", 0, lo=0, hi=1):
        raise c.fail("channels_last=1 is not supported", "write the model channels-first (NCHW)")
    return [T((*x.shape[:2], *[1] * (len(x.shape) - 2)), x.dtype)]


def qlinear_add(c: Ctx) -> list[TensorType]:
    """(a, b, p f32 [3]): 8-bit a and b of one shape and type (onnx_qlinear.py computes p)."""
    a, b, p = c.x(0), c.x(1), c.x(2)
    if a.dtype not in EIGHT or b.dtype != a.dtype or a.shape != b.shape:
        raise c.fail(f"adds {a.dtype.short}{list(a.shape)} and {b.dtype.short}{list(b.shape)}",
                     "slmc's QLinearAdd takes two 8-bit tensors of one type and shape (no broadcasting)")
    if p.dtype != DType.F32 or p.numel != 3:
        raise c.fail("its parameters must be three float32 values")
    return [T(a.shape, a.dtype)]
