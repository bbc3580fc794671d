"""numpy twins of the quantized operators onnxruntime runs through a lookup table or its own scalar loop
(frontend/onnx_qlinear_ext.py lowers com.microsoft QLinearSigmoid, QLinearLeakyRelu, QLinearSoftmax, QLinearMul
and QLinearAveragePool to these), bit for bit what onnxruntime 1.32's CPU kernels compute:

- QLinearLookup(x, table[256]): y = table[byte of x]; the tables (`sigmoid_table`, `leaky_relu_table`) are the
  ones onnxruntime builds when the session is created (qlinear_lookup_table.cc): each of the 256 codes
  dequantized in fp32, the float function (MLAS's logistic polynomial; v >= 0 ? v : alpha * v), MlasQuantizeLinear;
- QLinearSoftmax(x, table[256] f32, y_scale f32, y_zp) along the last axis (qlinear_softmax.cc): the table holds
  exp((i - 255 + shift) * x_scale) computed in double, stored as float, with shift = max(0, logf(FLT_MAX / D) - 5)
  / x_scale (logf: the float overload, glibc's, read from the 1.32 wheel's machine code); each row is looked up
  shifted by its maximum, summed in fp32 in order, and y = saturate(nearbyint(double(t) * double(floor(1 /
  y_scale)) / double(sum)) + y_zp), the quotient and its rounding in double (the wheel's code: mulsd, divsd,
  nearbyint), not in float as the source file in the repository reads;
- QLinearMul(a, b, a_zp, b_zp, ratio f32, c_zp) (MLAS's SSE2 kernel, which x86-64 runs):
  y = saturate(cvt_rne(float((a - a_zp) * (b - b_zp)) * ratio + c_zp)), ratio = a_scale * b_scale / c_scale;
  a value beyond int32 converts to INT32_MIN (cvtps2dq), then saturates;
- QuantizeAfterZp(x f32, scale, zp) (qlinear_pool.cc's quantize_value): y = saturate(nearbyint(x / scale + zp))."""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np

from slmc.reference.quant_ops import fma32
from slmc.reference.registry import reference_op

Arr = np.ndarray
F32 = np.float32

# MLAS's logistic (logistic.cpp, Eigen's coefficients): clamp to [-18, 18], p(x) / q(x) + 0.5, clamp to [0, 1]
_ALPHA = [F32(v) for v in (4.37031012579801e-11, 1.15627324459942e-07, 6.08574864600143e-05, 8.51377133304701e-03,
                           2.48287947061529e-01)]
_BETA = [F32(v) for v in (6.10247389755681e-13, 5.76102136993427e-09, 6.29106785017040e-06, 1.70198817374094e-03,
                          1.16817656904453e-01, 9.93151921023180e-01)]


def mlas_logistic(x: Arr) -> Arr:
    """MlasComputeLogistic as x86-64 with FMA3 runs it (fused multiply-adds)."""
    v = np.minimum(np.maximum(x.astype(F32), F32(-18)), F32(18))
    s = (v * v).astype(F32)
    p = fma32(s, _ALPHA[0], _ALPHA[1])
    for c in _ALPHA[2:]:
        p = fma32(p, s, c)
    p = (p * v).astype(F32)
    q = fma32(s, _BETA[0], _BETA[1])
    for c in _BETA[2:]:
        q = fma32(q, s, c)
    return np.clip(((p / q).astype(F32) + F32(0.5)).astype(F32), F32(0), F32(1)).astype(F32)


def _codes(dtype: Any) -> Arr:
    """The 256 codes in table order: byte i is the value static_cast<T>(i)."""
    return np.arange(256, dtype=np.uint8).view(dtype)


def _table(fn: Any, xs: float, xz: int, ys: float, yz: int, dtype: Any) -> Arr:
    from slmc.reference.quant_ops import quantize_linear

    d = (F32(xs) * (_codes(dtype).astype(np.int32) - int(xz)).astype(F32)).astype(F32)
    return quantize_linear([fn(d), np.array(ys, F32), np.array(yz, dtype)], {})[0]


def requantize_table(xs: float, xz: int, ys: float, yz: int, dtype: Any) -> Arr:
    """QLinearWhere's table for an input of another scale or zero point than the output's (identity function)."""
    return _table(lambda v: v, xs, xz, ys, yz, dtype)


def sigmoid_table(xs: float, xz: int, ys: float, yz: int, dtype: Any) -> Arr:
    return _table(mlas_logistic, xs, xz, ys, yz, dtype)


def leaky_relu_table(xs: float, xz: int, ys: float, yz: int, dtype: Any, alpha: float) -> Arr:
    a = F32(alpha)
    return _table(lambda v: np.where(v >= F32(0), v, (a * v).astype(F32)).astype(F32), xs, xz, ys, yz, dtype)


@functools.lru_cache(maxsize=1)
def _logf() -> Any:
    """The C library's logf (glibc's on Linux: what onnxruntime's table calls), else float32(log) rounded once."""
    import ctypes
    import ctypes.util

    try:
        f = ctypes.CDLL(ctypes.util.find_library("m") or "libm.so.6").logf
        f.restype, f.argtypes = ctypes.c_float, [ctypes.c_float]
        return lambda v: float(f(float(v)))
    except (OSError, AttributeError):
        return lambda v: float(F32(math.log(float(v))))


def softmax_table(x_scale: float, reduce_len: int, signed: bool) -> Arr:
    """QlinearBuildLookupTableUint32 with a float table: shift = max(0, logf(FLT_MAX / D) - 5) / x_scale, the
    quotient FLT_MAX / D and its log in float (C++'s log(float) overload), the rest in double."""
    xs = float(F32(x_scale))
    shift = max(0.0, _logf()(F32(np.finfo(F32).max) / F32(reduce_len)) - 5.0) / xs
    t = np.zeros(256, F32)
    for i in range(256):
        t[(i - 128) & 255 if signed else i] = F32(math.exp((float(i) - 255 + shift) * xs))
    return t


def rne_int32(v: Arr) -> Arr:
    """cvtps2dq: round half to even; NaN and values beyond int32 give INT32_MIN."""
    v = np.asarray(v, F32)
    bad = ~(np.abs(v) < F32(2147483648.0))
    return np.where(bad, np.int64(-2**31), np.rint(np.where(bad, F32(0), v)).astype(np.int64))


def _sat(v: Arr, dtype: Any) -> Arr:
    info = np.iinfo(dtype)
    return np.clip(v, info.min, info.max).astype(dtype)


@reference_op("QLinearLookup")
def qlinear_lookup(ins: list[Any], a: dict[str, Any]) -> list[Arr]:
    x, table = ins[0], np.asarray(ins[1])
    return [table[x.view(np.uint8).astype(np.intp)].astype(x.dtype)]


@reference_op("QLinearMul")
def qlinear_mul(ins: list[Any], a: dict[str, Any]) -> list[Arr]:
    x, y, xz, yz, ratio, cz = ins
    za, zb = int(np.asarray(xz).reshape(())), int(np.asarray(yz).reshape(()))
    prod = (x.astype(np.int32) - za) * (y.astype(np.int32) - zb)
    v = (prod.astype(F32) * F32(np.asarray(ratio).reshape(()))).astype(F32) + F32(int(np.asarray(cz).reshape(())))
    return [_sat(rne_int32(v.astype(F32)), x.dtype)]


@reference_op("QLinearSoftmax")
def qlinear_softmax(ins: list[Any], a: dict[str, Any]) -> list[Arr]:
    x, table, yscale, yz = ins[0], np.asarray(ins[1], F32), F32(np.asarray(ins[2]).reshape(())), ins[3]
    signed = x.dtype == np.int8
    z = int(np.asarray(yz).reshape(()))
    rows = x.reshape(-1, x.shape[-1]) if x.size else x.reshape(0, 1)
    out = np.zeros(rows.shape, x.dtype)
    for r in range(rows.shape[0]):
        row = rows[r].astype(np.int32)
        m = int(row.max())
        idx = ((127 - m) + row) & 255 if signed else row + 255 - m
        vals = table[idx]
        s = F32(0)
        for v in vals:  # (in order, in fp32)
            s = F32(s + v)
        q = np.minimum(np.rint(vals.astype(np.float64) * float(yscale) / float(s)), 2.0 ** 50).astype(np.int64) + z
        out[r] = _sat(q, x.dtype)
    return [out.reshape(x.shape)]


@reference_op("QuantizeAfterZp")
def quantize_after_zp(ins: list[Any], a: dict[str, Any]) -> list[Arr]:
    x, s, zp = ins[0].astype(F32), F32(np.asarray(ins[1]).reshape(())), ins[2]
    with np.errstate(all="ignore"):
        v = ((x / s).astype(F32) + F32(int(np.asarray(zp).reshape(())))).astype(F32)
    return [_sat(rne_int32(v), zp.dtype)]
