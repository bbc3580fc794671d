"""Shape arithmetic of ONNX-style operators, shared by the checker (ir/op_rules*.py), the numpy twins
(reference/) and the C emitters (kernels/): one definition of every slice bound, reshape target, pad
list, reduced axis and pooling window, so the check and the code it protects cannot disagree.

It sits in ir/ because every stage needs it and it needs nothing but the attributes.
"""

from __future__ import annotations

import math
from typing import Any


def reshape_target(shape: tuple[int, ...], target: list[int], allowzero: int) -> tuple[int, ...]:
    """ONNX Reshape: 0 copies the input dimension (unless allowzero), -1 takes what is left."""
    out = [shape[i] if (d == 0 and not allowzero) else d for i, d in enumerate(target)]
    if -1 in out:
        known = math.prod(d for d in out if d != -1)
        out[out.index(-1)] = math.prod(shape) // known if known else 0
    return tuple(int(d) for d in out)


def slice_params(shape: tuple[int, ...], a: dict[str, Any]) -> list[tuple[int, int, int]]:
    """(start, step, count) per dimension of an ONNX Slice, bounds clamped as numpy/ONNX clamp them."""
    rank = len(shape)
    params = [(0, 1, d) for d in shape]
    starts, ends = a["starts"], a["ends"]
    axes = a.get("axes") or list(range(len(starts)))
    steps = a.get("steps") or [1] * len(starts)
    for st, en, ax, sp in zip(starts, ends, axes, steps):
        ax %= rank
        r = range(shape[ax])[slice(_clip(st), _clip(en), sp)]
        params[ax] = (r.start if len(r) else 0, sp, len(r))
    return params


def _clip(v: int) -> int:
    # ONNX writes "to the end" as INT64_MAX; Python slices take any int, but keep them plain
    return int(max(min(v, 1 << 62), -(1 << 62)))


def full_pads(rank: int, a: dict[str, Any]) -> list[int]:
    """Pads as [begin_0 .. begin_r-1, end_0 .. end_r-1] over every axis."""
    pads, axes = list(a["pads"]), a.get("axes")
    if axes is None:
        return pads
    full = [0] * (2 * rank)
    n = len(axes)
    for i, ax in enumerate(axes):
        full[ax % rank], full[ax % rank + rank] = pads[i], pads[i + n]
    return full


def reduce_axes(rank: int, a: dict[str, Any]) -> tuple[int, ...]:
    """Axes a Reduce* node reduces (empty: none, the node is an identity)."""
    axes = a.get("axes")
    if not axes:
        return () if a.get("noop_with_empty_axes", 0) else tuple(range(rank))
    return tuple(sorted({ax % rank for ax in axes}))


def mean_axes(rank: int, a: dict[str, Any]) -> tuple[int, ...]:
    """Axes Deeploy's IntegerMean averages over (no axes: all of them; unlike ReduceMean, never none)."""
    axes = a.get("axes")
    return tuple(range(rank)) if not axes else tuple(sorted({int(ax) % rank for ax in axes}))


def pool_geometry(x_shape: tuple[int, ...], kernel: tuple[int, ...], a: dict[str, Any]) -> dict[str, list[int]]:
    """Strides, dilations, begin and end pads and output size per spatial axis of an ONNX Conv or pool
    (ceil_mode: the output rounded up, as onnxruntime and PyTorch do)."""
    nd = len(kernel)
    spatial = list(x_shape[2:])
    strides, dil = list(a.get("strides") or [1] * nd), list(a.get("dilations") or [1] * nd)
    auto = a.get("auto_pad", "NOTSET")
    span = [(k - 1) * d + 1 for k, d in zip(kernel, dil)]
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        out = [-(-i // s) for i, s in zip(spatial, strides)]
        total = [max(0, (o - 1) * s + k - i) for o, s, k, i in zip(out, strides, span, spatial)]
        begin = [t // 2 if auto == "SAME_UPPER" else t - t // 2 for t in total]
        end = [t - b for t, b in zip(total, begin)]
    else:
        pads = list(a.get("pads") or [0] * (2 * nd)) if auto == "NOTSET" else [0] * (2 * nd)
        begin, end = pads[:nd], pads[nd:]
    out = [(i + b + e - k) // s + 1 for i, b, e, k, s in zip(spatial, begin, end, span, strides)]
    if a.get("ceil_mode", 0) and auto not in ("SAME_UPPER", "SAME_LOWER"):
        # the last window may run past the end pad, but must start inside the input or its begin pad
        out = [-(-(i + b + e - k) // s) + 1 for i, b, e, k, s in zip(spatial, begin, end, span, strides)]
        out = [o - 1 if (o - 1) * s >= i + b else o for o, s, i, b in zip(out, strides, spatial, begin)]
    return {"strides": strides, "dilations": dil, "begin": begin, "end": end, "out": out}


def conv_transpose_geometry(x_shape: tuple[int, ...], w_shape: tuple[int, ...], a: dict[str, Any]) -> dict[str, list[int]]:
    """Strides, dilations, begin and end pads and output size per spatial axis of an ONNX ConvTranspose:
    out = stride * (in - 1) + output_padding + (kernel - 1) * dilation + 1 - pads, or the output_shape asked
    for (and SAME_*: in * stride), the pads then split as ONNX says (SAME_UPPER: the smaller half first)."""
    nd = len(w_shape) - 2
    spatial, kernel = list(x_shape[2:]), list(w_shape[2:])
    strides, dil = list(a.get("strides") or [1] * nd), list(a.get("dilations") or [1] * nd)
    extra = list(a.get("output_padding") or [0] * nd)
    full = [s * (i - 1) + e + (k - 1) * d + 1 for s, i, e, k, d in zip(strides, spatial, extra, kernel, dil)]
    auto = a.get("auto_pad", "NOTSET")
    want = list(a.get("output_shape") or [])[-nd:] if a.get("output_shape") else None
    if want is None and auto in ("SAME_UPPER", "SAME_LOWER"):
        want = [i * s for i, s in zip(spatial, strides)]
    if want is not None:  # (an output larger than `full` gives negative pads: zeros, then the bias, at the end)
        total = [f - o for f, o in zip(full, want)]
        small = [t // 2 for t in total]
        begin = small if auto == "SAME_UPPER" else [t - h for t, h in zip(total, small)]
        end = [t - b for t, b in zip(total, begin)]
    else:
        pads = list(a.get("pads") or [0] * (2 * nd)) if auto == "NOTSET" else [0] * (2 * nd)
        begin, end = pads[:nd], pads[nd:]
    out = [f - b - e for f, b, e in zip(full, begin, end)]
    return {"strides": strides, "dilations": dil, "begin": begin, "end": end, "out": out}
