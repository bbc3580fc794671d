"""Operator rules (ir/op_rules.py) for the float spatial operators beyond Conv and MaxPool (those are in
op_rules_tensor.py): AveragePool and BatchNormalization (inference)."""

from __future__ import annotations

from slmc.ir.op_rules import Ctx, T
from slmc.ir.op_rules_tensor import _geometry, _shape_list
from slmc.ir.types import TensorType


def average_pool(c: Ctx) -> list[TensorType]:
    x = c.x(0)
    if not x.dtype.is_float:
        raise c.fail(f"AveragePool of {x.dtype.short} data", "AveragePool takes float data")
    kernel = _shape_list(c, "kernel_shape")
    c.flag("ceil_mode")
    c.flag("count_include_pad")
    spatial = _geometry(c, x, kernel)
    return [T((x.shape[0], x.shape[1], *spatial), x.dtype)]


def batch_norm(c: Ctx) -> list[TensorType]:
    x = c.x(0)
    if len(x.shape) < 2:
        raise c.fail(f"input {list(x.shape)} has no channel axis (rank below 2)")
    for i, what in enumerate(("scale", "bias", "mean", "var"), 1):
        t = c.x(i)
        if t.shape != (x.shape[1],):
            raise c.fail(f"{what} {list(t.shape)} must be [{x.shape[1]}] (one value per channel)")
    if c.flag("training_mode") or c.n_out > 1:
        raise c.fail("runs in training mode (batch statistics)", "export the model in eval mode")
    c.float("epsilon", 1e-5)
    c.float("momentum", 0.9)
    return [T(x.shape, x.dtype)]


def conv_transpose(c: Ctx) -> list[TensorType]:
    from slmc.ir.shapes import conv_transpose_geometry

    x, w, b = c.x(0), c.x(1), c.opt(2)
    nd = len(x.shape) - 2
    if nd < 1 or len(w.shape) != len(x.shape):
        raise c.fail(f"input {list(x.shape)} and weights {list(w.shape)} must be [N, C, spatial...] and [C, M/group, kernel...]")
    group = c.int("group", 1, lo=1)
    if w.shape[0] != x.shape[1] or x.shape[1] % group:
        raise c.fail(f"{x.shape[1]} input channels, weights {list(w.shape)} and group {group} do not match")
    m = w.shape[1] * group
    kernel = list(w.shape[2:])
    if c.ints("kernel_shape") not in (None, kernel):
        raise c.fail(f"kernel_shape {c.ints('kernel_shape')} differs from the weights' {kernel}")
    if b is not None and b.shape != (m,):
        raise c.fail(f"bias {list(b.shape)} must be [{m}]")
    if any(k < 1 for k in kernel):
        raise c.fail(f"kernel {kernel} has a size below 1")
    for key, lo in (("strides", 1), ("dilations", 1), ("output_padding", 0)):
        v = c.ints(key)
        if v is not None and (len(v) != nd or any(s < lo for s in v)):
            raise c.fail(f"{key} {v} must be {nd} values >= {lo}")
    pads = c.ints("pads")
    if pads is not None and (len(pads) != 2 * nd or any(p < 0 for p in pads)):
        raise c.fail(f"pads {pads} must be {2 * nd} values >= 0")
    shape = c.ints("output_shape")
    if shape is not None and len(shape) not in (nd, nd + 2):
        raise c.fail(f"output_shape {shape} must give the {nd} spatial sizes")
    auto = c.attrs.get("auto_pad", "NOTSET")
    if auto not in ("NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"):
        raise c.fail(f"auto_pad is {auto!r}, must be NOTSET, SAME_UPPER, SAME_LOWER or VALID")
    g = conv_transpose_geometry(x.shape, w.shape, c.attrs)
    if any(o < 1 for o in g["out"]):
        raise c.fail(f"the output size {g['out']} (pads {g['begin'] + g['end']}) is not valid")
    return [T((x.shape[0], m, *g["out"]), x.dtype)]


def group_norm(c: Ctx) -> list[TensorType]:
    """InstanceNormalization (a group per channel) and GroupNormalization: scale and bias per channel."""
    x = c.x(0)
    if len(x.shape) < 3 and c.op == "InstanceNormalization" or len(x.shape) < 2:
        raise c.fail(f"input {list(x.shape)} has no channel (or spatial) axis")
    ch = x.shape[1]
    groups = ch if c.op == "InstanceNormalization" else c.int("num_groups", lo=1)
    if ch % groups:
        raise c.fail(f"{ch} channels do not split into {groups} groups")
    for i, what in ((1, "scale"), (2, "bias")):
        if c.x(i).shape != (ch,):
            raise c.fail(f"{what} {list(c.x(i).shape)} must be [{ch}] (one value per channel)")
    c.float("epsilon", 1e-5)
    return [T(x.shape, x.dtype)]


def resize(c: Ctx) -> list[TensorType]:
    """The canonical Resize (frontend/onnx_canon.py): x, then its per-axis tap indices and weights."""
    x, idx, w = c.x(0), c.x(1), c.x(2)
    sizes = _shape_list(c, "sizes")
    taps = _shape_list(c, "taps")
    if len(sizes) != len(x.shape) or len(taps) != len(x.shape) or any(t < 1 for t in taps) or any(s < 0 for s in sizes):
        raise c.fail(f"sizes {sizes} and taps {taps} must give one value per axis of {list(x.shape)}")
    n = sum(s * t for s, t in zip(sizes, taps))
    if idx.shape != (n,) or w.shape != (n,):
        raise c.fail(f"its tap tables {list(idx.shape)}, {list(w.shape)} must hold {n} entries")
    c.float("extrapolation_value", 0.0)
    return [T(tuple(sizes), x.dtype)]
