"""numpy twins of ONNX's float spatial operators beyond Conv and MaxPool (those twins, shared with the
integer networks, are in deeploy_ops.py): AveragePool and BatchNormalization (inference). Float64 math,
rounded once to the node's type, as in onnx_ops.py."""

from __future__ import annotations

from typing import Any

import numpy as np

from slmc.ir.shapes import pool_geometry
from slmc.reference.deeploy_ops import _windows
from slmc.reference.registry import reference_op

Arr = np.ndarray


@reference_op("AveragePool")
def average_pool(ins: list[Any], a: dict[str, Any]) -> list[Arr]:
    """The mean of each window. Positions in the pads count when count_include_pad is 1; positions a
    ceil_mode window reaches past the end pad never count (onnxruntime's and PyTorch's divisor)."""
    x = ins[0]
    kernel = tuple(a["kernel_shape"])
    g = pool_geometry(x.shape, kernel, a)
    xp, pos = _windows(x.astype(np.float64), kernel, g, 0.0)
    inside = np.zeros((1, 1) + xp.shape[2:])
    lo = [0 if a.get("count_include_pad", 0) else b for b in g["begin"]]
    hi = [b + i + (e if a.get("count_include_pad", 0) else 0) for b, i, e in zip(g["begin"], x.shape[2:], g["end"])]
    inside[(slice(None), slice(None)) + tuple(slice(l, h) for l, h in zip(lo, hi))] = 1
    total = np.add.reduce([xp[sl] for sl in pos])
    count = np.add.reduce([inside[sl] for sl in pos])
    return [(total / count).astype(x.dtype)]


@reference_op("BatchNormalization")
def batch_norm(ins: list[Any], a: dict[str, Any]) -> list[Arr]:
    """Inference: y = (x - mean) / sqrt(var + epsilon) * scale + bias, per channel (axis 1)."""
    x, scale, bias, mean, var = (v.astype(np.float64) for v in ins[:5])
    shape = (1, -1) + (1,) * (x.ndim - 2)
    s = scale / np.sqrt(var + a.get("epsilon", 1e-5))
    y = (x - mean.reshape(shape)) * s.reshape(shape) + bias.reshape(shape)
    return [y.astype(ins[0].dtype)]


@reference_op("ConvTranspose")
def conv_transpose(ins: list[Any], a: dict[str, Any]) -> list[Arr]:
    """Each input element adds w[c, m] times itself at out = in * stride - pad_begin + k * dilation."""
    from slmc.ir.shapes import conv_transpose_geometry

    x, w = ins[0].astype(np.float64), ins[1].astype(np.float64)
    b = ins[2] if len(ins) > 2 else None
    g = conv_transpose_geometry(x.shape, w.shape, a)
    groups = int(a.get("group", 1))
    cg, mg = x.shape[1] // groups, w.shape[1]
    nd = x.ndim - 2
    full = [s * (i - 1) + (k - 1) * d + 1 for s, i, k, d in zip(g["strides"], x.shape[2:], w.shape[2:], g["dilations"])]
    y = np.zeros((x.shape[0], mg * groups, *full))
    for k in np.ndindex(*w.shape[2:]):
        sl = tuple(slice(k[d] * g["dilations"][d], k[d] * g["dilations"][d] + g["strides"][d] * (x.shape[2 + d] - 1) + 1,
                         g["strides"][d]) for d in range(nd))
        for gi in range(groups):
            wk = w[(slice(gi * cg, (gi + 1) * cg), slice(None)) + k]  # [cg, mg]
            y[(slice(None), slice(gi * mg, (gi + 1) * mg)) + sl] += np.einsum("nc...,cm->nm...", x[:, gi * cg:(gi + 1) * cg], wk)
    # the output window [begin, begin + out) of the full result; where it reaches past it (output_padding,
    # negative pads), zeros
    out = np.zeros((x.shape[0], mg * groups, *g["out"]))
    src = tuple(slice(max(bg, 0), min(bg + o, f)) for bg, o, f in zip(g["begin"], g["out"], full))
    dst = tuple(slice(s.start - bg, s.stop - bg) for s, bg in zip(src, g["begin"]))
    if all(s.stop > s.start for s in src):
        out[(slice(None), slice(None)) + dst] = y[(slice(None), slice(None)) + src]
    y = out
    if b is not None:
        y = y + b.astype(np.float64).reshape((1, -1) + (1,) * nd)
    return [y.astype(ins[0].dtype)]


@reference_op("InstanceNormalization", "GroupNormalization")
def group_norm(ins: list[Any], a: dict[str, Any]) -> list[Arr]:
    """Normalised over each group of channels and the spatial axes, then scale and bias per channel."""
    x = ins[0].astype(np.float64)
    ch = x.shape[1]
    groups = ch if "num_groups" not in a else int(a["num_groups"])
    xg = x.reshape(x.shape[0], groups, -1)
    mean = xg.mean(axis=-1, keepdims=True)
    var = ((xg - mean) ** 2).mean(axis=-1, keepdims=True)
    y = ((xg - mean) / np.sqrt(var + a.get("epsilon", 1e-5))).reshape(x.shape)
    shape = (1, ch) + (1,) * (x.ndim - 2)
    y = y * ins[1].astype(np.float64).reshape(shape) + ins[2].astype(np.float64).reshape(shape)
    return [y.astype(ins[0].dtype)]


@reference_op("Resize")
def resize(ins: list[Any], a: dict[str, Any]) -> list[Arr]:
    """The canonical Resize: one axis at a time, each output position the weighted sum of its taps
    (ir/resize.py's tables); a row of index -1 is tf_crop_and_resize's extrapolation_value."""
    x, idx, w = ins[0], ins[1], ins[2].astype(np.float64)
    y = x.astype(np.float64)
    at = 0
    for d, (n_out, taps) in enumerate(zip(a["sizes"], a["taps"])):
        i = idx[at:at + n_out * taps].reshape(n_out, taps)
        wt = w[at:at + n_out * taps].reshape(n_out, taps)
        at += n_out * taps
        if taps == 1 and n_out == y.shape[d] and np.array_equal(i[:, 0], np.arange(n_out)) and np.all(wt == 1):
            continue
        got = np.take(y, np.clip(i, 0, max(y.shape[d] - 1, 0)), axis=d) if y.shape[d] else np.zeros(
            y.shape[:d] + i.shape + y.shape[d + 1:])
        z = (got * wt.reshape((1,) * d + wt.shape + (1,) * (y.ndim - d - 1))).sum(axis=d + 1)
        out = (i[:, 0] < 0).reshape((1,) * d + (n_out,) + (1,) * (y.ndim - d - 1))
        y = np.where(out, a.get("extrapolation_value", 0.0), z)
    return [y.astype(x.dtype)]
