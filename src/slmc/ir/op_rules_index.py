"""Operator rules (ir/op_rules.py) of the ONNX helper operators exporters put around masks, positions and
sampling: CumSum, GatherND, IsNaN, IsInf, TopK (their twins: reference/onnx_index_ops.py)."""

from __future__ import annotations

from slmc.ir.op_rules import Ctx, T
from slmc.ir.types import DType, TensorType

_NUMERIC = tuple(d for d in DType if d != DType.BOOL)
_SUMMABLE = (DType.F32, DType.F64, DType.I32, DType.U32, DType.I64, DType.U64)  # CumSum's types in ONNX


def cumsum(c: Ctx) -> list[TensorType]:
    x = c.x(0)
    if not x.shape:
        raise c.fail("the input is a scalar (CumSum takes a tensor of rank >= 1)")
    if x.dtype not in _SUMMABLE:
        raise c.fail(f"the input is {x.dtype.short}; CumSum takes float32/64 and (unsigned) 32/64-bit integers")
    c.axis(c.int("axis"), len(x.shape))
    c.flag("exclusive")
    c.flag("reverse")
    return [x]


def gather_nd(c: Ctx) -> list[TensorType]:
    x, idx = c.x(0), c.x(1)
    if idx.dtype not in (DType.I32, DType.I64):
        raise c.fail(f"indices are {idx.dtype.short}, must be int64 (or int32)")
    r, q = len(x.shape), len(idx.shape)
    b = c.int("batch_dims", 0, lo=0)
    if r < 1 or q < 1 or b >= min(r, q):
        raise c.fail(f"batch_dims {b} must be below the ranks of data {list(x.shape)} and indices {list(idx.shape)}")
    if x.shape[:b] != idx.shape[:b]:
        raise c.fail(f"the first {b} (batch) dimensions of data {list(x.shape)} and indices {list(idx.shape)} differ")
    depth = idx.shape[-1]
    if not 1 <= depth <= r - b:
        raise c.fail(f"indices {list(idx.shape)} end in tuples of {depth}, must be 1..{r - b} for data "
                     f"{list(x.shape)} with batch_dims {b}")
    known = c.value(1)
    if known is not None and known.size:
        tuples = known.reshape(-1, depth)
        for d in range(depth):
            lo, hi, n = int(tuples[:, d].min()), int(tuples[:, d].max()), x.shape[b + d]
            if lo < -n or hi >= n:
                raise c.fail(f"index {lo if lo < -n else hi} is out of range for axis {b + d} of size {n}")
    return [T(idx.shape[:-1] + x.shape[b + depth:], x.dtype)]


def float_class(c: Ctx) -> list[TensorType]:
    """IsNaN, IsInf."""
    x = c.x(0)
    if not x.dtype.is_float:
        raise c.fail(f"the input is {x.dtype.short}, must be a floating-point type")
    if c.op == "IsInf":
        c.flag("detect_positive", 1)
        c.flag("detect_negative", 1)
    return [T(x.shape, DType.BOOL)]


def top_k(c: Ctx) -> list[TensorType]:
    x = c.x(0)
    if x.dtype not in _NUMERIC:
        raise c.fail(f"the input is {x.dtype.short}, must be numeric")
    ax = c.axis(c.int("axis", -1), len(x.shape))
    k = c.int("k", lo=0)
    if k > x.shape[ax]:
        raise c.fail(f"k {k} exceeds the {x.shape[ax]} elements along axis {ax} of {list(x.shape)}")
    c.flag("largest", 1)
    c.flag("sorted", 1)
    shape = x.shape[:ax] + (k,) + x.shape[ax + 1:]
    return [T(shape, x.dtype), T(shape, DType.I64)]
