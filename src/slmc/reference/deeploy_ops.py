"""numpy twins of Deeploy's integer operators (and the two float ones its tests use), exactly as
../shared/conformance/deeploy/README.md defines them.

Everything is computed in int64: `trunc_div` is C's truncating division, `>>` on int64 is numpy's
arithmetic (floor) shift, `isqrt` the exact floor square root. The importer proves (frontend/
onnx_deeploy.py) that no intermediate leaves int64, so these are the exact values the C kernels must
produce. A node's output type is its `out_dtype` attribute (set when the graph is made integer); while
the ONNX graph is being read (float32 storage, integer values) the output keeps the input's type.

Attributes are the canonical ones of onnx_deeploy.normalise: `shift` for a power-of-two divisor (div,
D), plain ints for the rest.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from slmc.ir import DType
from slmc.ir.shapes import mean_axes, pool_geometry
from slmc.reference.onnx_ops import n_outputs
from slmc.reference.registry import reference_op

Arr = np.ndarray
_MAX_SHIFT = 63  # a right shift by 63 or more of a value below 2^63 in magnitude gives 0 or -1


def i64(x: Arr) -> Arr:
    x = np.asarray(x)
    return np.rint(x).astype(np.int64) if x.dtype.kind == "f" else x.astype(np.int64)


def _out(y: Arr, like: Arr, a: dict[str, Any]) -> Arr:
    dt = a.get("out_dtype")
    return y.astype(DType[dt].np if dt else np.asarray(like).dtype)


def trunc_div(a: Arr, b: Arr) -> Arr:
    """C's a / b on integers: truncation toward zero (b == 0 gives 0, as in the C kernels)."""
    a, b = np.asarray(a, np.int64), np.asarray(b, np.int64)
    q = np.abs(a) // np.where(b == 0, 1, np.abs(b))
    return np.where(b == 0, 0, np.where((a < 0) != (b < 0), -q, q))


def round_div(a: Arr, b: Arr) -> Arr:
    """a / b rounded half away from zero, exactly: sign * floor((2|a| + |b|) / 2|b|) (b == 0 gives 0)."""
    a, b = np.asarray(a, np.int64), np.asarray(b, np.int64)
    q = (2 * np.abs(a) + np.abs(b)) // np.where(b == 0, 1, 2 * np.abs(b))
    return np.where(b == 0, 0, np.where((a < 0) != (b < 0), -q, q))


def shr(x: Arr, s: Arr | int) -> Arr:
    """Arithmetic shift right by s >= 0 (shifts past the width saturate, as the C kernels do)."""
    return np.right_shift(np.asarray(x, np.int64), np.minimum(np.asarray(s, np.int64), _MAX_SHIFT))


def isqrt(v: Arr) -> Arr:
    """Exact floor square root of non-negative int64 values."""
    flat = [math.isqrt(int(t)) for t in np.asarray(v, np.int64).reshape(-1)]
    return np.array(flat, dtype=np.int64).reshape(np.shape(v))


def levels(n_levels: int, signed: int) -> tuple[int, int]:
    return (-(n_levels // 2), n_levels // 2 - 1) if signed else (0, n_levels - 1)


@reference_op("RequantShift")
def requant_shift(ins: list[Any], a: dict[str, Any]) -> list[Arr]:
    x, mul, add = (i64(v) for v in ins[:3])
    s = a["shift"]
    lo, hi = levels(a["n_levels"], a["signed"])
    y = shr(x * mul + add + ((1 << s) >> 1), s)
    return [_out(np.clip(y, lo, hi), ins[0], a)]


@reference_op("iSoftmax")
def i_softmax(ins: list[Any], a: dict[str, Any]) -> list[Arr]:
    x = i64(ins[0])
    log2 = a["log2"]
    t = x - x.max(axis=-1, keepdims=True)
    z = np.clip(-trunc_div(t, np.int64(log2)), 0, 31)
    p = t + z * log2
    e = shr(a["coeffA"] * (p + a["coeffB"]) ** 2 + a["coeffC"], z)
    y = trunc_div(e * (a["n_levels"] - 1), e.sum(axis=-1, keepdims=True))
    return [_out(y, ins[0], a)]


def _ita_terms(x: Arr, m: Arr) -> tuple[Arr, Arr]:
    sh = shr(m - x + 16, 5)
    return sh, shr(np.int64(256), sh)


@reference_op("ITAMax")
def ita_max(ins: list[Any], a: dict[str, Any]) -> list[Arr]:
    x = i64(ins[0])
    sh, terms = _ita_terms(x, x.max(axis=-1, keepdims=True))
    y = shr(((a["n_levels"] - 1) * 256) // terms.sum(axis=-1, keepdims=True), sh)
    return [_out(y, ins[0], a)]


@reference_op("ITAPartialMax")
def ita_partial_max(ins: list[Any], a: dict[str, Any]) -> list[Arr]:
    x = i64(ins[0])
    w = a["group_width"]
    rows = x.reshape(-1, x.shape[-1])
    y = np.zeros_like(rows)
    for r, row in enumerate(rows):
        total, best = 0, None
        for g in range(0, row.size, w):
            part = row[g:g + w]
            gmax = int(part.max())
            if best is None or gmax > best:
                if best is not None:  # the running sum was taken against a smaller maximum
                    total = int(shr(np.int64(total), (gmax - best + 16) >> 5))
                best = gmax
            total += int(_ita_terms(part, np.int64(best))[1].sum())
        sh, _ = _ita_terms(row, np.int64(best))
        y[r] = shr(((a["n_levels"] // 2 - 1) * 256) // total, sh)
    return [_out(y.reshape(x.shape), ins[0], a)]


@reference_op("iRMSNorm")
def i_rms_norm(ins: list[Any], a: dict[str, Any]) -> list[Arr]:
    x, w = i64(ins[0]), i64(ins[1])
    n = x.shape[-1]
    sd = isqrt((x * x).sum(axis=-1, keepdims=True) // n + 1)
    lo, hi = levels(a["n_levels"], 1)
    y = np.clip(shr(trunc_div(x * w, sd), a["shift"]), lo, hi)
    return [_out(y, ins[0], a)]


@reference_op("iLayerNorm")
def i_layer_norm(ins: list[Any], a: dict[str, Any]) -> list[Arr]:
    x, w, b = i64(ins[0]), i64(ins[1]), i64(ins[2])
    n = x.shape[-1]
    t = x - trunc_div(x.sum(axis=-1, keepdims=True), np.int64(n))
    sd = isqrt(trunc_div((t * t).sum(axis=-1, keepdims=True), np.int64(n)) + 1)
    y = shr(trunc_div(t * w, sd) + b, a["shift"])
    return [_out(y, ins[0], a)]


@reference_op("iGELU")
def i_gelu(ins: list[Any], a: dict[str, Any]) -> list[Arr]:
    x = i64(ins[0])
    b, one = a["b"], a["one"]
    q = np.minimum(np.abs(x), -b)
    big_l = np.sign(x) * (one - (q + b) ** 2)
    return [_out(x * shr(one + big_l, 1), ins[0], a)]


@reference_op("iHardswish")
def i_hardswish(ins: list[Any], a: dict[str, Any]) -> list[Arr]:
    x = i64(ins[0])
    return [_out(x * (np.clip(x + a["three"], 0, a["six"]) * a["one_over_six"]), ins[0], a)]


def true_integer_div_factor(a: dict[str, Any]) -> int:
    return (a["Delta"] * a["eta"]) // (a["y"] * a["eta"] + a["eps"])


@reference_op("TrueIntegerDiv")
def true_integer_div(ins: list[Any], a: dict[str, Any]) -> list[Arr]:
    return [_out(i64(ins[0]) * true_integer_div_factor(a), ins[0], a)]


@reference_op("iNoNorm")
def i_no_norm(ins: list[Any], a: dict[str, Any]) -> list[Arr]:
    x, w, b = (i64(v) for v in ins[:3])
    return [_out(shr((x * w + b) * a["mul"], a["shift"]), ins[0], a)]


@reference_op("IntegerDiv")
def integer_div(ins: list[Any], a: dict[str, Any]) -> list[Arr]:
    num = a["Delta"] * a["eta"] * i64(ins[0])
    den = a["eta"] * i64(ins[1]) + a["eps"]
    return [_out(round_div(num, den), ins[0], a)]


@reference_op("IntegerMean")
def integer_mean(ins: list[Any], a: dict[str, Any]) -> list[Arr]:
    x = i64(ins[0])
    axes = mean_axes(x.ndim, a)
    count = math.prod(x.shape[d] for d in axes)
    y = round_div(x.sum(axis=axes, keepdims=bool(a.get("keepdims", 1))), np.int64(count))
    return [_out(y, ins[0], a)]


# ---- standard products on integer data (the importer renames MatMul/Gemm of an integer graph) ----

@reference_op("IntMatMul")
def int_matmul(ins: list[Any], a: dict[str, Any]) -> list[Arr]:
    return [_out(np.matmul(i64(ins[0]), i64(ins[1])), ins[0], a)]


@reference_op("IntGemm")
def int_gemm(ins: list[Any], a: dict[str, Any]) -> list[Arr]:
    x, w = i64(ins[0]), i64(ins[1])
    x = x.T if a.get("transA", 0) else x
    w = w.T if a.get("transB", 0) else w
    y = int(a.get("alpha", 1)) * (x @ w)
    if len(ins) > 2 and ins[2] is not None:
        y = y + int(a.get("beta", 1)) * i64(ins[2])
    return [_out(y, ins[0], a)]


# ---- Conv and MaxPool (NCHW, 1-D or 2-D), on integer data in integer networks -------------------------

def _windows(x: Arr, kernel: tuple[int, ...], g: dict[str, list[int]], fill: Any) -> tuple[Arr, list[tuple]]:
    """x padded with `fill`, and the strided slice of every kernel position (each of the output's size)."""
    nd = len(kernel)
    # (ceil_mode: the last window may reach past the end pad)
    reach = [(o - 1) * s + (k - 1) * d + 1 for o, s, k, d in zip(g["out"], g["strides"], kernel, g["dilations"])]
    ends = [max(e, r - i - b, 0) for e, r, i, b in zip(g["end"], reach, x.shape[2:], g["begin"])]
    xp = np.pad(x, [(0, 0), (0, 0)] + [(b, e) for b, e in zip(g["begin"], ends)], constant_values=fill)
    pos = []
    for k in np.ndindex(*kernel):
        pos.append((slice(None), slice(None)) + tuple(
            slice(k[d] * g["dilations"][d], k[d] * g["dilations"][d] + g["strides"][d] * (g["out"][d] - 1) + 1,
                  g["strides"][d]) for d in range(nd)))
    return xp, pos


@reference_op("Conv")
def conv(ins: list[Any], a: dict[str, Any]) -> list[Arr]:
    x, w = ins[0], ins[1]
    b = ins[2] if len(ins) > 2 else None
    exact = x.dtype.kind != "f"
    xv, wv = (i64(x), i64(w)) if exact else (x.astype(np.float64), w.astype(np.float64))
    kernel = tuple(w.shape[2:])
    g = pool_geometry(x.shape, kernel, a)
    groups, m = int(a.get("group", 1)), w.shape[0]
    cg, mg = x.shape[1] // groups, m // groups
    xp, pos = _windows(xv, kernel, g, 0)
    y = np.zeros((x.shape[0], m, *g["out"]), dtype=xv.dtype)
    for k, sl in zip(np.ndindex(*kernel), pos):
        patch = xp[sl]
        for gi in range(groups):
            wk = wv[(slice(gi * mg, (gi + 1) * mg), slice(None)) + k]               # [mg, cg]
            y[:, gi * mg:(gi + 1) * mg] += np.einsum("nc...,mc->nm...", patch[:, gi * cg:(gi + 1) * cg], wk)
    if b is not None:
        y = y + (i64(b) if exact else b.astype(np.float64)).reshape((1, m) + (1,) * len(kernel))
    return [_out(y, x, a)]


@reference_op("MaxPool")
def max_pool(ins: list[Any], a: dict[str, Any]) -> list[Arr]:
    x = ins[0]
    kernel = tuple(a["kernel_shape"])
    g = pool_geometry(x.shape, kernel, a)
    low = np.iinfo(x.dtype).min if x.dtype.kind in "iu" else -np.inf
    xp, pos = _windows(x, kernel, g, low)
    y = np.maximum.reduce([xp[sl] for sl in pos]).astype(x.dtype)
    if n_outputs(a, 1) < 2:
        return [y]
    # Indices: where each maximum lies in the input flattened (storage_order 1: spatial axes first to last);
    # the first window position holding it (in the padding: -1, never the maximum of a window with data)
    sp = x.shape[2:]
    flat = np.arange(int(np.prod(sp))).reshape(sp)
    if a.get("storage_order", 0):
        flat = np.arange(int(np.prod(sp))).reshape(sp[::-1]).T
    where = flat + (np.arange(x.shape[0] * x.shape[1]) * flat.size).reshape(x.shape[:2] + (1,) * len(sp))
    ip, _ = _windows(where, kernel, g, -1)
    at = np.full(y.shape, -1, np.int64)
    for sl in pos:
        hit = (at < 0) & (xp[sl] == y) & (ip[sl] >= 0)
        at[hit] = ip[sl][hit]
    return [y, at]


# ---- float ---------------------------------------------------------------------------------------

@reference_op("RMSNorm")
def rms_norm(ins: list[Any], a: dict[str, Any]) -> list[Arr]:
    x = ins[0].astype(np.float64)
    y = x / np.sqrt((x * x).mean(axis=-1, keepdims=True) + a.get("eps", 1e-5)) * ins[1].astype(np.float64)
    return [y.astype(ins[0].dtype)]
