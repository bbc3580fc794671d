"""numpy twins of the quantized operators (ir/op_rules_quant.py), bit for bit what onnxruntime's CPU kernels
(MLAS) compute: float32 arithmetic where they use it, rounding half to even, saturation to the output type.

- QuantizeLinear: y = saturate(rint(x / scale) + zp) (MlasQuantizeLinear divides, clamps in float, rounds);
- DequantizeLinear: y = float(int32(x) - zp) * scale;
- ConvInteger / MatMulInteger: exact int32 sums of (x - x_zp) * (w - w_zp);
- Requantize (MlasRequantizeOutput): y = saturate(rint(float(acc + bias) * multiplier) + zp);
- QLinearGlobalAveragePool (MlasQLinearGlobalAveragePoolNchw): the plane's int32 sum less zp * size, then
  requantized with multiplier x_scale / (y_scale * size)."""

from __future__ import annotations

from typing import Any

import numpy as np

from slmc.reference.fma import fma32 as exact_fma32
from slmc.reference.deeploy_ops import conv as _conv
from slmc.reference.registry import reference_op

Arr = np.ndarray
F32 = np.float32


def _along(p: Arr | None, x: Arr, axis: int, dtype: Any) -> Arr:
    """A scale or zero point shaped to broadcast over x (one value, or one per element of `axis`)."""
    if p is None:
        return np.zeros((), dtype)
    p = np.asarray(p).astype(dtype)
    if p.shape == x.shape:
        return p
    if p.size == 1 or x.ndim == 0:
        return p.reshape(())
    shape = [1] * x.ndim
    shape[axis % x.ndim] = -1
    return p.reshape(shape)


def saturate_round(v: Arr, zp: Arr, dtype: Any) -> Arr:
    """MLAS's last step: clamp the float value to the range less the zero point, round half to even, add zp."""
    info = np.iinfo(dtype)
    zp32 = zp.astype(np.int32)
    v = np.where(np.isnan(v), F32(0), v).astype(F32)
    v = np.minimum(np.maximum(v, (info.min - zp32).astype(F32)), (info.max - zp32).astype(F32))
    return (np.rint(v).astype(np.int32) + zp32).astype(dtype)


@reference_op("QuantizeLinear")
def quantize_linear(ins: list[Any], a: dict[str, Any]) -> list[Arr]:
    x, s = ins[0].astype(F32), ins[1]
    zp = ins[2] if len(ins) > 2 and ins[2] is not None else np.zeros((), np.uint8)
    axis = int(a.get("axis", 1))
    with np.errstate(all="ignore"):
        v = (x / _along(s, x, axis, F32)).astype(F32)
    return [saturate_round(v, _along(zp, x, axis, zp.dtype), zp.dtype)]


@reference_op("DequantizeLinear")
def dequantize_linear(ins: list[Any], a: dict[str, Any]) -> list[Arr]:
    x, s = ins[0], ins[1]
    zp = ins[2] if len(ins) > 2 else None
    axis = int(a.get("axis", 1))
    d = (x.astype(np.int32) - _along(zp, x, axis, np.int32)).astype(F32)
    return [(d * _along(s, x, axis, F32)).astype(F32)]


def _centred(v: Arr, zp: Arr | None, shape: tuple[int, ...]) -> Arr:
    out = v.astype(np.int64)
    return out if zp is None else out - np.asarray(zp).astype(np.int64).reshape(shape)


@reference_op("ConvInteger")
def conv_integer(ins: list[Any], a: dict[str, Any]) -> list[Arr]:
    x, w = ins[0], ins[1]
    xz = ins[2] if len(ins) > 2 else None
    wz = ins[3] if len(ins) > 3 else None
    wshape = (-1,) + (1,) * (w.ndim - 1) if wz is not None and np.asarray(wz).size > 1 else ()
    xc, wc = _centred(x, xz, ()), _centred(w, wz, wshape)
    attrs = {k: v for k, v in a.items() if k != "out_dtype"}
    return [_conv([xc, wc], attrs)[0].astype(np.int32)]


@reference_op("MatMulInteger")
def matmul_integer(ins: list[Any], a: dict[str, Any]) -> list[Arr]:
    x, w = ins[0], ins[1]
    az = ins[2] if len(ins) > 2 else None
    bz = ins[3] if len(ins) > 3 else None
    return [np.matmul(_centred(x, az, ()), _centred(w, bz, (-1,) if bz is not None and np.asarray(bz).size > 1 else ()))
            .astype(np.int32)]


@reference_op("Requantize")
def requantize(ins: list[Any], a: dict[str, Any]) -> list[Arr]:
    acc, m, zp = ins[0].astype(np.int32), ins[1], ins[2]
    b = ins[3] if len(ins) > 3 else None
    axis = int(a.get("axis", 1))
    if b is not None:
        acc = (acc.astype(np.int64) + _along(b, acc, axis, np.int64)).astype(np.int32)
    v = (acc.astype(F32) * _along(m, acc, axis, F32)).astype(F32)
    return [saturate_round(v, np.asarray(zp).reshape(()), zp.dtype)]


@reference_op("QLinearGlobalAveragePool")
def qlinear_global_average_pool(ins: list[Any], a: dict[str, Any]) -> list[Arr]:
    x, m, xz, yz = ins
    axes = tuple(range(2, x.ndim))
    size = int(np.prod(x.shape[2:]))
    acc = (x.astype(np.int64).sum(axis=axes, keepdims=True) - int(np.asarray(xz).reshape(())) * size).astype(np.int32)
    v = (acc.astype(F32) * F32(np.asarray(m).reshape(()))).astype(F32)
    return [saturate_round(v, np.asarray(yz).reshape(()), x.dtype)]


def fma32(a: Arr, b: Arr, c: Arr) -> Arr:
    """fp32 fused multiply-add, rounded once (reference/fma.py: exact on every host, no long double)."""
    return exact_fma32(a, b, c)


def qlinear_add_params(sa: float, za: int, sb: float, zb: int, sc: float, zc: int) -> Arr:
    """{scale_a / scale_c, scale_b / scale_c, zp_c - (r_a * zp_a + r_b * zp_b)} in fp32, MLAS's order. gcc
    fuses the first product of MLAS's r_a * zp_a + r_b * zp_b (qladd_avx2.cpp is built with FMA): a tie in
    the output's rounding can fall on either side of it (measured against onnxruntime over all code pairs
    of 60 random parameter sets: 9 of 3.9M outputs differed unfused, none fused)."""
    ra, rb = F32(F32(sa) / F32(sc)), F32(F32(sb) / F32(sc))
    return np.array([ra, rb, F32(F32(zc) - exact_fma32(ra, F32(za), F32(rb * F32(zb))))], F32)


@reference_op("QLinearAdd")
def qlinear_add(ins: list[Any], a: dict[str, Any]) -> list[Arr]:
    x, y, p = ins[0], ins[1], np.asarray(ins[2], F32).reshape(-1)
    v = fma32(x.astype(F32), p[0], fma32(y.astype(F32), p[1], p[2]))
    return [saturate_round(v, np.zeros((), np.int32), x.dtype)]
