"""Numpy twins of kernels/c/layer_normalization_ort_f32.c, erf_mlas_f32.c (Erf, Gelu) and matmul_mlas_f32.c: the
same float32 operations in the same order, each fused multiply-add rounded once (reference/fma.py), so they give
the C kernels' bits. Nodes the ONNX frontend marked (ir/numerics.py) take these; any other LayerNormalization,
Erf, Gelu or MatMul keeps its float64 twin in onnx_ops.py."""

from __future__ import annotations

from typing import Any

import numpy as np

from slmc.ir.numerics import M1, N1, PACKED, is_ort, mlas_sgemm_path
from slmc.reference.fma import fma32
from slmc.reference.registry import REFERENCE, reference_op

Arr = np.ndarray
F32, F64 = np.float32, np.float64


_SP = [F32(v) for v in (-5.99104969e-4, 4.99339588e-3, -2.67667342e-2, 1.12818025e-1, -3.76124859e-1,
                        1.28379151e-1)]
_BP = [F32(v) for v in (1.72948930e-5, -3.83208680e-4, 3.88393435e-3, -2.42545605e-2, 1.06777847e-1,
                        6.34846687e-1, 1.28717512e-1)]
_EP = [F32(v) for v in (1.38319808e-3, 8.37550033e-3, 4.16689515e-2, 1.66664466e-1, 4.99999851e-1, 1.0, 1.0)]
_UPPER, _SPLIT, _LOWER = F32(3.925), F32(0.921875), F32(-88.3762626647949)
_LOG2E, _LN2_HI, _LN2_LO, _ROUND = F32(1.44269504088896341), F32(-6.93145752e-1), F32(-1.42860677e-6), F32(1.25829120e+7)


def erf_mlas(x: Arr) -> Arr:
    """erf_mlas_f32.c, element by element."""
    x = np.asarray(x, F32)
    sign = x.view(np.uint32) & np.uint32(0x80000000)
    a = np.abs(x)
    a = np.where(a < _UPPER, a, _UPPER).astype(F32)
    s = (a * a).astype(F32)
    r = np.full(a.shape, _SP[0], F32)
    for p in _SP[1:]:
        r = fma32(r, s, p)
    r = fma32(r, a, a)
    big = _SPLIT <= a
    small = np.where(big, F32(0), r).astype(F32)
    ab = np.where(big, a, F32(0)).astype(F32)
    rb = np.full(a.shape, _BP[0], F32)
    for p in _BP[1:]:
        rb = fma32(rb, ab, p)
    rb = -fma32(rb, ab, ab)
    rb = np.where(rb > _LOWER, rb, _LOWER).astype(F32)
    e = (fma32(_LOG2E, rb, _ROUND) - _ROUND).astype(F32)
    f = fma32(e, _LN2_LO, fma32(e, _LN2_HI, rb))
    y = np.full(a.shape, _EP[0], F32)
    for p in _EP[1:]:
        y = fma32(y, f, p)
    pw = ((e.astype(np.int32) + 127).astype(np.uint32) << np.uint32(23)).view(F32)
    y = (F32(1) - (y * pw).astype(F32)).astype(F32)
    out = np.where(big, y, small).astype(F32)
    return (out.view(np.uint32) | sign).view(F32)


def layer_norm_ort(x: Arr, w: Arr, b: "Arr | None", eps: float, axis: int) -> tuple[Arr, Arr, Arr]:
    """layer_normalization_ort_f32.c: (y, mean, inv_std_dev), the statistics one per row."""
    x = np.asarray(x, F32)
    n = int(np.prod(x.shape[axis:]))
    rows = x.reshape(-1, n)
    lanes = np.zeros((rows.shape[0], 4), F64)
    i = 0
    while i + 4 <= n:
        lanes = lanes + rows[:, i:i + 4].astype(F64)
        i += 4
    dsum = (lanes[:, 0] + lanes[:, 2]) + (lanes[:, 1] + lanes[:, 3])
    for j in range(i, n):
        dsum = dsum + rows[:, j].astype(F64)
    mean = (dsum / F64(n)).astype(F32)
    acc = np.zeros((rows.shape[0], 8), F32)
    i = 0
    while i + 8 <= n:
        d = (rows[:, i:i + 8] - mean[:, None]).astype(F32)
        acc = fma32(d, d, acc)
        i += 8
    t = (acc[:, :4] + acc[:, 4:]).astype(F32)
    var = ((t[:, 0] + t[:, 2]).astype(F32) + (t[:, 1] + t[:, 3]).astype(F32)).astype(F32)
    if i + 4 <= n:
        for j in range(i, i + 4):
            d = (rows[:, j] - mean).astype(F32)
            var = (var + (d * d).astype(F32)).astype(F32)
        i += 4
    for j in range(i, n):
        d = (rows[:, j] - mean).astype(F32)
        var = fma32(d, d, var)
    inv = (F32(1) / np.sqrt(((var / F32(n)).astype(F32) + F32(eps)).astype(F32))).astype(F32)
    v = ((rows - mean[:, None]).astype(F32) * inv[:, None]).astype(F32)
    scale = np.asarray(w, F32).reshape(1, n)
    y = fma32(v, scale, np.asarray(b, F32).reshape(1, n)) if b is not None else (v * scale).astype(F32)
    return y.reshape(x.shape), mean, inv


_plain_erf, _plain_gelu, _plain_layer_norm = REFERENCE["Erf"], REFERENCE["Gelu"], REFERENCE["LayerNormalization"]


@reference_op("Erf")
def erf(ins: list[Any], a: dict[str, Any]) -> list[Arr]:
    if is_ort(a) and ins[0].dtype == F32:
        return [erf_mlas(ins[0])]
    return _plain_erf(ins, a)


@reference_op("Gelu")
def gelu(ins: list[Any], a: dict[str, Any]) -> list[Arr]:
    """erf_mlas_f32.c's slmc_gelu_mlas_f32: 0.5 * x * (erf(x * 0.70710678f) + 1), left to right."""
    x = ins[0]
    if not (is_ort(a) and x.dtype == F32):
        return _plain_gelu(ins, a)
    e = erf_mlas((x * F32(0.70710678118654752)).astype(F32))
    return [((F32(0.5) * x).astype(F32) * (e + F32(1)).astype(F32)).astype(F32)]


@reference_op("LayerNormalization")
def layer_normalization(ins: list[Any], a: dict[str, Any]) -> list[Arr]:
    x = ins[0]
    if not (is_ort(a) and x.dtype == F32):
        return _plain_layer_norm(ins, a)
    axis = a.get("axis", -1) % x.ndim
    y, mean, inv = layer_norm_ort(x, ins[1], ins[2] if len(ins) > 2 else None, a.get("epsilon", 1e-5), axis)
    stat = x.shape[:axis] + (1,) * (x.ndim - axis)
    outs = [y, mean.reshape(stat), inv.reshape(stat)]
    n_out = len(a["_out_shapes"]) if "_out_shapes" in a else 3
    return outs[:n_out]


# ---- MatMul: matmul_mlas_f32.c (ir/numerics.py's mlas_sgemm_path picks the order) -----------------------------

def _mlas_product(a: Arr, b: Arr, path: int, kb: int) -> Arr:
    """One (m x k) @ (k x n) float32 product in MLAS's order."""
    m, k = a.shape
    n = b.shape[1]
    zero = F32(0)
    if path == M1:
        y = np.zeros(n, F32)
        p = 0
        while p + 4 <= k:
            t = (a[0, p] * b[p]).astype(F32)
            for q in range(p + 1, p + 4):
                t = (t + (a[0, q] * b[q]).astype(F32)).astype(F32)
            y = (t + y).astype(F32)
            p += 4
        if k & 2:
            y = ((a[0, p] * b[p] + a[0, p + 1] * b[p + 1]).astype(F32) + y).astype(F32)
            p += 2
        if k & 1:
            y = ((a[0, p] * b[p]).astype(F32) + y).astype(F32)
        return y.reshape(1, n)
    if path == N1:
        w = b[:, 0]
        lanes = np.zeros((m, 8), F32)
        full = k - k % 8
        for p in range(0, full, 8):
            lanes = (lanes + (a[:, p:p + 8] * w[p:p + 8]).astype(F32)).astype(F32)
        if full < k:
            tail = np.zeros((m, 8), F32)
            tail[:, :k - full] = a[:, full:] * w[full:]
            lanes = (lanes + tail).astype(F32)
        c = [lanes[:, i] for i in range(8)]
        four = ((((c[0] + c[1]) + c[2]) + c[3]) + (((c[4] + c[5]) + c[6]) + c[7])) + zero
        pair = (((c[0] + c[2]) + (c[4] + c[6])) + ((c[1] + c[3]) + (c[5] + c[7]))) + zero
        one = (((c[0] + c[1]) + (c[2] + c[3])) + ((c[4] + c[5]) + (c[6] + c[7]))) + zero
        g4 = m & ~3
        y = np.concatenate([four[:g4], pair[g4:g4 + (m & 2)], one[g4 + (m & 2):]]).astype(F32)
        return y.reshape(m, 1)
    y = np.zeros((m, n), F32)
    for k0 in range(0, k, kb):
        s = np.zeros((m, n), F32)
        for p in range(k0, min(k0 + kb, k)):
            s = fma32(a[:, p:p + 1], b[p:p + 1, :], s)
        y = s if k0 == 0 else (s + y).astype(F32)
    return y


def matmul_mlas(x: Arr, y: Arr, packed: bool) -> Arr:
    """ONNX MatMul of float32 operands as onnxruntime's CPU provider sums it (one thread): a 2-D (or 1-D) B
    takes A's batch into m, as its MatMulComputeHelper does; otherwise each product of the broadcast batch."""
    x, y = np.asarray(x, F32), np.asarray(y, F32)
    a2 = x if x.ndim >= 2 else x[None, :]
    b2 = y if y.ndim >= 2 else y[:, None]
    m, k, n = a2.shape[-2], a2.shape[-1], b2.shape[-1]
    if b2.ndim == 2:
        rows = a2.reshape(-1, k)
        path, kb = mlas_sgemm_path(rows.shape[0], k, n, packed and y.ndim == 2)
        out = _mlas_product(rows, b2, path, kb).reshape(a2.shape[:-2] + (m, n))
    else:
        batch = tuple(np.broadcast_shapes(a2.shape[:-2], b2.shape[:-2]))
        aa = np.broadcast_to(a2, batch + (m, k)).reshape(-1, m, k)
        bb = np.broadcast_to(b2, batch + (k, n)).reshape(-1, k, n)
        path, kb = mlas_sgemm_path(m, k, n, False)
        out = np.stack([_mlas_product(aa[i], bb[i], path, kb) for i in range(aa.shape[0])]).reshape(batch + (m, n))
    if x.ndim == 1:
        out = out[..., 0, :]
    if y.ndim == 1:
        out = out[..., 0]
    return np.ascontiguousarray(out, F32)


_plain_matmul = REFERENCE["MatMul"]


@reference_op("MatMul")
def matmul(ins: list[Any], a: dict[str, Any]) -> list[Arr]:
    x, y = ins
    if not (is_ort(a) and x.dtype == F32 and y.dtype == F32):
        return _plain_matmul(ins, a)
    return [matmul_mlas(x, y, bool(a.get(PACKED, 0)))]
