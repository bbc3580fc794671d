"""Operator rules (ir/op_rules.py) for data movement, shape operators, Conv/MaxPool, Deeploy's integer
operators and slmc's language-model operators: the output types their inputs and attributes give, or an
SlmcError saying which attribute breaks which rule."""

from __future__ import annotations

import math

import numpy as np

from slmc.ir.op_rules import Ctx, T
from slmc.ir.types import DType, TensorType


def _shape_list(c: Ctx, key: str) -> list[int]:
    v = c.ints(key, required=True)
    assert v is not None
    return v


def reshape(c: Ctx) -> list[TensorType]:
    from slmc.ir.shapes import reshape_target

    x = c.x(0)
    target = _shape_list(c, "shape")
    allowzero = c.flag("allowzero")
    if any(d < -1 for d in target) or target.count(-1) > 1:
        raise c.fail(f"target shape {target} has a dimension below -1 or more than one -1")
    if allowzero and 0 in target and -1 in target:
        raise c.fail(f"target shape {target} has both 0 and -1 with allowzero=1")
    if not allowzero and any(d == 0 and i >= len(x.shape) for i, d in enumerate(target)):
        raise c.fail(f"target shape {target} copies (0) a dimension the input {list(x.shape)} does not have")
    if -1 in target:
        known = math.prod(x.shape[i] if (d == 0 and not allowzero) else d for i, d in enumerate(target) if d != -1)
        if known == 0 or x.numel % known:
            raise c.fail(f"cannot reshape {list(x.shape)} ({x.numel} elements) to {target}")
    out = reshape_target(x.shape, target, allowzero)
    if math.prod(out) != x.numel:
        raise c.fail(f"cannot reshape {list(x.shape)} ({x.numel} elements) to {list(out)} ({math.prod(out)} elements)")
    return [T(out, x.dtype)]


def flatten(c: Ctx) -> list[TensorType]:
    x = c.x(0)
    r = len(x.shape)
    ax = c.int("axis", 1)
    if not -r <= ax <= r:
        raise c.fail(f"axis {ax} is out of range for an input of rank {r} (must be in {-r}..{r})")
    ax = ax + r if ax < 0 else ax
    return [T((math.prod(x.shape[:ax]), math.prod(x.shape[ax:])), x.dtype)]


def squeeze(c: Ctx) -> list[TensorType]:
    x = c.x(0)
    axes = c.ints("axes")
    if axes is None:
        return [T([d for d in x.shape if d != 1], x.dtype)]
    norm = c.axes(axes, len(x.shape))
    bad = [a for a in norm if x.shape[a] != 1]
    if bad:
        raise c.fail(f"axis {bad[0]} of {list(x.shape)} has size {x.shape[bad[0]]}, not 1")
    return [T([d for i, d in enumerate(x.shape) if i not in norm], x.dtype)]


def unsqueeze(c: Ctx) -> list[TensorType]:
    x = c.x(0)
    axes = _shape_list(c, "axes")
    r = len(x.shape) + len(axes)
    norm = set(c.axes(axes, r))
    it = iter(x.shape)
    return [T([1 if i in norm else next(it) for i in range(r)], x.dtype)]


def transpose(c: Ctx) -> list[TensorType]:
    x = c.x(0)
    perm = c.ints("perm") or list(reversed(range(len(x.shape))))
    if sorted(perm) != list(range(len(x.shape))):
        raise c.fail(f"perm {perm} is not a permutation of the {len(x.shape)} axes of {list(x.shape)}")
    return [T([x.shape[p] for p in perm], x.dtype)]


def concat(c: Ctx) -> list[TensorType]:
    ts = [c.x(i) for i in range(len(c.ins))]
    dt = c.same_dtype(ts)
    if "axis" not in c.attrs:
        raise c.fail("attribute 'axis' is missing")
    r = len(ts[0].shape)
    if any(len(t.shape) != r for t in ts):
        raise c.fail(f"inputs have different ranks: {[list(t.shape) for t in ts]}")
    ax = c.axis(c.int("axis"), r)
    if any(t.shape[:ax] + t.shape[ax + 1:] != ts[0].shape[:ax] + ts[0].shape[ax + 1:] for t in ts):
        raise c.fail(f"inputs {[list(t.shape) for t in ts]} differ outside the axis {ax}")
    return [T(ts[0].shape[:ax] + (sum(t.shape[ax] for t in ts),) + ts[0].shape[ax + 1:], dt)]


def split(c: Ctx) -> list[TensorType]:
    x = c.x(0)
    ax = c.axis(c.int("axis", 0), len(x.shape))
    sizes = _shape_list(c, "split")
    if len(sizes) != c.n_out or any(s < 0 for s in sizes) or sum(sizes) != x.shape[ax]:
        raise c.fail(f"split sizes {sizes} must be {c.n_out} non-negative sizes adding up to {x.shape[ax]} "
                     f"(axis {ax} of {list(x.shape)})")
    return [T(x.shape[:ax] + (s,) + x.shape[ax + 1:], x.dtype) for s in sizes]


def slice_(c: Ctx) -> list[TensorType]:
    from slmc.ir.shapes import slice_params

    x = c.x(0)
    r = len(x.shape)
    starts, ends = _shape_list(c, "starts"), _shape_list(c, "ends")
    axes = c.ints("axes") or list(range(len(starts)))
    steps = c.ints("steps") or [1] * len(starts)
    if not len(starts) == len(ends) == len(axes) == len(steps):
        raise c.fail(f"starts {starts}, ends {ends}, axes {axes} and steps {steps} differ in length")
    c.axes(axes, r)
    if 0 in steps:
        raise c.fail(f"steps {steps} hold a 0")
    return [T([n for _, _, n in slice_params(x.shape, {**c.attrs, "axes": axes, "steps": steps})], x.dtype)]


def pad(c: Ctx) -> list[TensorType]:
    from slmc.ir.shapes import full_pads

    x = c.x(0)
    r = len(x.shape)
    pads = _shape_list(c, "pads")
    axes = c.ints("axes")
    n = len(axes) if axes is not None else r
    if axes is not None:
        c.axes(axes, r)
    if len(pads) != 2 * n:
        raise c.fail(f"pads {pads} must hold {2 * n} values (begin and end for each of {n} axes)")
    mode = c.attrs.get("mode", "constant")
    if mode not in ("constant", "edge", "reflect", "wrap"):
        raise c.fail(f"mode is {mode!r}, must be constant, edge, reflect or wrap")
    value = c.attrs.get("value", 0.0)
    if not isinstance(value, (int, float, bool, np.number, np.bool_)) or (
            not x.dtype.is_float and not math.isfinite(float(value))):
        raise c.fail(f"the pad value {value!r} is not a {x.dtype.short} value")
    full = full_pads(r, {"pads": pads, "axes": axes})
    out = []
    for d in range(r):
        b, e, size = full[d], full[d + r], x.shape[d]
        if max(0, -b) + max(0, -e) > size:
            raise c.fail(f"pads {b}, {e} crop more than the {size} elements of axis {d}")
        if mode != "constant" and (b > 0 or e > 0) and (size == 0 or mode == "reflect" and max(b, e) >= size):
            raise c.fail(f"{mode} padding by {max(b, e)} of an axis of {size} elements")
        out.append(size + b + e)
    return [T(out, x.dtype)]


def expand(c: Ctx) -> list[TensorType]:
    x = c.x(0)
    shape = _shape_list(c, "shape")
    if any(d < 0 for d in shape):
        raise c.fail(f"target shape {shape} has a negative dimension")
    return [T(c.bcast(x.shape, tuple(shape)), x.dtype)]


def tile(c: Ctx) -> list[TensorType]:
    x = c.x(0)
    reps = _shape_list(c, "repeats")
    if len(reps) != len(x.shape) or any(k < 0 for k in reps):
        raise c.fail(f"repeats {reps} must be {len(x.shape)} non-negative counts (one per axis of {list(x.shape)})")
    return [T([d * k for d, k in zip(x.shape, reps)], x.dtype)]


def gather(c: Ctx) -> list[TensorType]:
    x, idx = c.x(0), c.x(1)
    ax = c.axis(c.int("axis", 0), len(x.shape))
    if idx.dtype not in (DType.I32, DType.I64):
        raise c.fail(f"indices are {idx.dtype.short}, must be int32 or int64")
    known = c.value(1)
    if known is not None and known.size:
        lo, hi, d = int(known.min()), int(known.max()), x.shape[ax]
        if lo < -d or hi >= d:
            raise c.fail(f"index {lo if lo < -d else hi} is out of range for axis {ax} of size {d}")
    return [T(x.shape[:ax] + idx.shape + x.shape[ax + 1:], x.dtype)]


def trilu(c: Ctx) -> list[TensorType]:
    x = c.x(0)
    if len(x.shape) < 2:
        raise c.fail(f"input {list(x.shape)} has rank < 2")
    c.int("k", 0)
    c.flag("upper", 1)
    return [x]


def constant_of_shape(c: Ctx) -> list[TensorType]:
    shape = _shape_list(c, "shape")
    if any(d < 0 for d in shape):
        raise c.fail(f"shape {shape} has a negative dimension")
    value = c.attrs.get("value")
    if value is None:
        return [T(shape, DType.F32)]
    if not isinstance(value, np.ndarray) or value.size != 1:
        raise c.fail("value must be a tensor of one element")
    try:
        return [T(shape, DType.from_numpy(value.dtype))]
    except ValueError:
        raise c.fail(f"value is {value.dtype}, which slmc does not support") from None


def range_(c: Ctx) -> list[TensorType] | None:
    ts = [c.x(i) for i in range(3)]
    dt = c.same_dtype(ts)
    if any(t.numel != 1 for t in ts):
        raise c.fail(f"start, limit and delta must be scalars, not {[list(t.shape) for t in ts]}")
    vals = [c.value(i) for i in range(3)]
    if any(v is None for v in vals):
        return None  # canonicalisation already demands constants; a pass cannot move them
    start, limit, delta = (float(np.asarray(v).reshape(-1)[0]) for v in vals)  # type: ignore[union-attr]
    if not all(math.isfinite(v) for v in (start, limit, delta)) or delta == 0:
        raise c.fail(f"start {start}, limit {limit}, delta {delta} do not make a finite range")
    return [T((max(int(math.ceil((limit - start) / delta)), 0),), dt)]


def shape(c: Ctx) -> list[TensorType]:
    r = len(c.x(0).shape)
    start, end = c.int("start", 0), c.int("end", r)
    start, end = (max(0, min(r, v + r if v < 0 else v)) for v in (start, end))
    return [T((max(0, end - start),), DType.I64)]


def size(c: Ctx) -> list[TensorType]:
    c.x(0)
    return [T((), DType.I64)]


# ---- Conv and MaxPool (NCHW) --------------------------------------------------------------------------------

def _geometry(c: Ctx, x: TensorType, kernel: list[int]) -> list[int]:
    from slmc.ir.shapes import pool_geometry

    nd = len(kernel)
    if len(x.shape) != nd + 2:
        raise c.fail(f"input {list(x.shape)} must be [N, C] plus {nd} spatial axes")
    if any(k < 1 for k in kernel):
        raise c.fail(f"kernel {kernel} has a size below 1")
    for key in ("strides", "dilations"):
        v = c.ints(key)
        if v is not None and (len(v) != nd or any(s < 1 for s in v)):
            raise c.fail(f"{key} {v} must be {nd} values >= 1")
    auto = c.attrs.get("auto_pad", "NOTSET")
    if auto not in ("NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"):
        raise c.fail(f"auto_pad is {auto!r}, must be NOTSET, SAME_UPPER, SAME_LOWER or VALID")
    pads = c.ints("pads")
    if pads is not None and (len(pads) != 2 * nd or any(p < 0 for p in pads)):
        raise c.fail(f"pads {pads} must be {2 * nd} values >= 0")
    out = pool_geometry(x.shape, tuple(kernel), c.attrs)["out"]
    if any(o < 1 for o in out):
        raise c.fail(f"a {kernel} kernel (with these strides, pads and dilations) does not fit the input {list(x.shape)}")
    return out


def conv(c: Ctx) -> list[TensorType]:
    x, w, b = c.x(0), c.x(1), c.opt(2)
    if len(x.shape) < 3 or len(w.shape) != len(x.shape):
        raise c.fail(f"input {list(x.shape)} and weights {list(w.shape)} must be [N, C, spatial...] and [M, C/group, kernel...]")
    group = c.int("group", 1, lo=1)
    m = w.shape[0]
    if x.shape[1] != w.shape[1] * group or m % group:
        raise c.fail(f"{x.shape[1]} input channels, weights {list(w.shape)} and group {group} do not match")
    kernel = list(w.shape[2:])
    if c.ints("kernel_shape") not in (None, kernel):
        raise c.fail(f"kernel_shape {c.ints('kernel_shape')} differs from the weights' {kernel}")
    if b is not None and b.shape != (m,):
        raise c.fail(f"bias {list(b.shape)} must be [{m}]")
    out = _geometry(c, x, kernel)
    return [T((x.shape[0], m, *out), c.out_dtype(x.dtype))]


def max_pool(c: Ctx) -> list[TensorType]:
    x = c.x(0)
    kernel = _shape_list(c, "kernel_shape")
    c.flag("ceil_mode")
    spatial = _geometry(c, x, kernel)
    out = (x.shape[0], x.shape[1], *spatial)
    return [T(out, x.dtype), T(out, DType.I64)][:c.n_out]


# ---- Deeploy's integer operators and the float RMSNorm (frontend/onnx_deeploy.py) -----------------------------

def params_onto_x(c: Ctx) -> list[TensorType]:
    """RequantShift, iRMSNorm, iLayerNorm, RMSNorm: per-element or per-channel parameters over x."""
    x = c.x(0)
    for i in range(1, len(c.ins)):
        c.onto(c.x(i).shape, x.shape, f"input {i}")
    for key in ("shift", "n_levels"):
        if key in c.attrs:
            c.int(key, lo=0 if key == "shift" else 1)
    if "signed" in c.attrs:
        c.flag("signed")
    return [T(x.shape, c.out_dtype(x.dtype))]


def broadcast_all(c: Ctx) -> list[TensorType]:
    """iNoNorm, IntegerDiv: every input broadcast to the output."""
    return [T(c.bcast(*(c.x(i).shape for i in range(len(c.ins)))), c.out_dtype(c.x(0).dtype))]


# ---- language-model operators built by slmc (frontend/build*.py) ------------------------------------------------

def llm_same(c: Ctx) -> list[TensorType]:
    """add, swiglu (operands of one shape), rmsnorm, layernorm, gelu, rope: the output is x's type."""
    x = c.x(0)
    if c.op in ("add", "swiglu", "geglu") and c.x(1).shape != x.shape:
        raise c.fail(f"operands {list(x.shape)} and {list(c.x(1).shape)} differ")
    return [x]


def kv_write(c: Ctx) -> list[TensorType]:
    return [c.x(0)]  # an in-place update: the output is the cache itself
