"""numpy twins of the ONNX helper operators that exporters put around masks, positions and sampling:
CumSum, GatherND, IsNaN, IsInf, TopK (C: kernels/c/cumsum.c, gather_nd.c, float_class.c, topk.c).

Inputs that decide shapes (CumSum's axis, TopK's k) are attributes here (frontend/onnx_canon.py). Each
twin computes what its C kernel computes: CumSum sums in the element type, in order along the axis
(integers wrap); GatherND and TopK order and index as the C does, ties in TopK going to the lower index.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from slmc.reference.registry import reference_op

Arr = np.ndarray


@reference_op("CumSum")
def cumsum(ins: list[Any], a: dict[str, Any]) -> list[Arr]:
    x = ins[0]
    axis = a["axis"] % x.ndim
    if a.get("reverse", 0):
        x = np.flip(x, axis)
    with np.errstate(all="ignore"):
        y = np.cumsum(x, axis=axis, dtype=x.dtype)
    if a.get("exclusive", 0):
        zero = np.zeros_like(np.take(y, [0], axis=axis)) if y.shape[axis] else y
        y = np.concatenate([zero, np.take(y, range(y.shape[axis] - 1), axis=axis)], axis=axis)
    if a.get("reverse", 0):
        y = np.flip(y, axis)
    return [np.ascontiguousarray(y)]


@reference_op("GatherND")
def gather_nd(ins: list[Any], a: dict[str, Any]) -> list[Arr]:
    x, idx = ins
    b = a.get("batch_dims", 0)
    depth = idx.shape[-1]
    nb, m = math.prod(x.shape[:b]), math.prod(idx.shape[b:-1])
    shape = idx.shape[:-1] + x.shape[b + depth:]
    if x.size == 0:  # (every index is out of range)
        return [np.zeros(shape, x.dtype)]
    dims = np.array(x.shape[b:b + depth], dtype=np.int64)
    xb = x.reshape((nb,) + x.shape[b:])
    ii = idx.astype(np.int64).reshape(nb, m, depth)
    ii = np.where(ii < 0, ii + dims, ii)
    ok = np.all((ii >= 0) & (ii < dims), axis=-1)          # out of range: zeros, as the C gives
    ii = np.where(ok[..., None], ii, 0)
    out = xb[(np.arange(nb)[:, None],) + tuple(ii[..., d] for d in range(depth))]
    out[~ok] = 0
    return [np.ascontiguousarray(out.reshape(shape))]


@reference_op("IsNaN")
def is_nan(ins: list[Any], a: dict[str, Any]) -> list[Arr]:
    return [np.isnan(ins[0])]


@reference_op("IsInf")
def is_inf(ins: list[Any], a: dict[str, Any]) -> list[Arr]:
    x = ins[0]
    return [np.isinf(x) & np.where(np.signbit(x), bool(a.get("detect_negative", 1)), bool(a.get("detect_positive", 1)))]


@reference_op("TopK")
def top_k(ins: list[Any], a: dict[str, Any]) -> list[Arr]:
    x = ins[0]
    axis, k = a.get("axis", -1) % x.ndim, a["k"]
    n = x.shape[axis]
    if a.get("largest", 1):  # descending, equal values by ascending index: a stable sort of the reversed line
        order = np.flip(n - 1 - np.argsort(np.flip(x, axis), axis=axis, kind="stable"), axis)
    else:
        order = np.argsort(x, axis=axis, kind="stable")
    ids = np.take(order, range(k), axis=axis).astype(np.int64)
    return [np.ascontiguousarray(np.take_along_axis(x, ids, axis=axis)), np.ascontiguousarray(ids)]
