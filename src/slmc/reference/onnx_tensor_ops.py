"""numpy twins of the ONNX data-movement and shape operators. Their shape rules (slice bounds, reshape
targets, pads) are ir/shapes.py's, shared with the C emitters and the checker: one definition."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from slmc.ir.shapes import full_pads, reshape_target, slice_params
from slmc.reference.registry import reference_op

Arr = np.ndarray


@reference_op("Reshape")
def reshape(ins: list[Any], a: dict[str, Any]) -> list[Arr]:
    return [ins[0].reshape(reshape_target(ins[0].shape, a["shape"], a.get("allowzero", 0)))]


@reference_op("Identity")
def identity(ins: list[Any], a: dict[str, Any]) -> list[Arr]:
    return [ins[0]]


@reference_op("Flatten")
def flatten(ins: list[Any], a: dict[str, Any]) -> list[Arr]:
    x = ins[0]
    axis = a.get("axis", 1)
    axis = axis + x.ndim if axis < 0 else axis
    return [x.reshape(math.prod(x.shape[:axis]), math.prod(x.shape[axis:]))]


@reference_op("Squeeze")
def squeeze(ins: list[Any], a: dict[str, Any]) -> list[Arr]:
    x = ins[0]
    axes = a.get("axes")
    if axes is None:
        axes = [i for i, d in enumerate(x.shape) if d == 1]
    return [np.squeeze(x, axis=tuple(ax % x.ndim for ax in axes))]


@reference_op("Unsqueeze")
def unsqueeze(ins: list[Any], a: dict[str, Any]) -> list[Arr]:
    x = ins[0]
    rank = x.ndim + len(a["axes"])
    return [np.expand_dims(x, tuple(sorted(ax % rank for ax in a["axes"])))]


@reference_op("Transpose")
def transpose(ins: list[Any], a: dict[str, Any]) -> list[Arr]:
    x = ins[0]
    perm = a.get("perm") or list(reversed(range(x.ndim)))
    return [np.asarray(np.transpose(x, perm), order="C")]


@reference_op("Concat")
def concat(ins: list[Any], a: dict[str, Any]) -> list[Arr]:
    return [np.concatenate(ins, axis=a["axis"])]


@reference_op("Split")
def split(ins: list[Any], a: dict[str, Any]) -> list[Arr]:
    x = ins[0]
    bounds = np.cumsum(a["split"])[:-1]
    return [np.asarray(p, order="C") for p in np.split(x, bounds, axis=a.get("axis", 0))]


@reference_op("Slice")
def slice_(ins: list[Any], a: dict[str, Any]) -> list[Arr]:
    x = ins[0]
    idx = tuple(slice(s, s + sp * n if s + sp * n >= 0 else None, sp) if n else slice(0, 0)
                for s, sp, n in slice_params(x.shape, a))
    return [np.asarray(x[idx], order="C")]


@reference_op("Gather")
def gather(ins: list[Any], a: dict[str, Any]) -> list[Arr]:
    x, idx = ins
    return [np.take(x, idx.astype(np.int64), axis=a.get("axis", 0))]


@reference_op("Expand")
def expand(ins: list[Any], a: dict[str, Any]) -> list[Arr]:
    x = ins[0]
    shape = np.broadcast_shapes(x.shape, tuple(a["shape"]))
    return [np.array(np.broadcast_to(x, shape))]


@reference_op("Tile")
def tile(ins: list[Any], a: dict[str, Any]) -> list[Arr]:
    return [np.tile(ins[0], a["repeats"])]


@reference_op("Where")
def where(ins: list[Any], a: dict[str, Any]) -> list[Arr]:
    c, x, y = ins
    return [np.where(c, x, y).astype(x.dtype)]


@reference_op("Cast")
def cast(ins: list[Any], a: dict[str, Any]) -> list[Arr]:
    with np.errstate(all="ignore"):
        return [ins[0].astype(a["to"].np)]


@reference_op("Shape")
def shape(ins: list[Any], a: dict[str, Any]) -> list[Arr]:
    dims = ins[0].shape
    r = len(dims)
    start, end = a.get("start", 0), a.get("end", r)
    start, end = max(0, min(r, start + r if start < 0 else start)), max(0, min(r, end + r if end < 0 else end))
    return [np.array(dims[start:end], dtype=np.int64)]


@reference_op("Size")
def size(ins: list[Any], a: dict[str, Any]) -> list[Arr]:
    return [np.array(ins[0].size, dtype=np.int64)]


@reference_op("ConstantOfShape")
def constant_of_shape(ins: list[Any], a: dict[str, Any]) -> list[Arr]:
    value = a.get("value", np.zeros(1, np.float32))
    return [np.full(tuple(a["shape"]), value.reshape(-1)[0], dtype=value.dtype)]


@reference_op("Range")
def range_(ins: list[Any], a: dict[str, Any]) -> list[Arr]:
    start, limit, delta = (v.reshape(-1)[0] for v in ins)
    n = max(int(math.ceil((float(limit) - float(start)) / float(delta))), 0)
    return [(start + np.arange(n, dtype=ins[0].dtype) * delta).astype(ins[0].dtype)]


@reference_op("Trilu")
def trilu(ins: list[Any], a: dict[str, Any]) -> list[Arr]:
    k = a.get("k", 0)
    return [np.triu(ins[0], k) if a.get("upper", 1) else np.tril(ins[0], k)]


@reference_op("Pad")
def pad(ins: list[Any], a: dict[str, Any]) -> list[Arr]:
    x = ins[0]
    pads = full_pads(x.ndim, a)
    r = x.ndim
    # negative pads crop
    x = x[tuple(slice(max(0, -pads[i]), x.shape[i] - max(0, -pads[i + r])) for i in range(r))]
    width = [(max(0, pads[i]), max(0, pads[i + r])) for i in range(r)]
    mode = a.get("mode", "constant")
    if mode == "constant":
        return [np.pad(x, width, mode="constant", constant_values=a.get("value", 0))]
    return [np.pad(x, width, mode={"edge": "edge", "reflect": "reflect", "wrap": "wrap"}[mode])]
