"""Registry entries of the ONNX helper operators exporters put around masks, positions and sampling
(CumSum, GatherND, IsNaN, IsInf, TopK); the rest of the generic ONNX kernels are in kernels/onnx.py.
Their twins: reference/onnx_index_ops.py; their rules: ir/op_rules_index.py.
"""

from __future__ import annotations

import math

from slmc.cquote import c_int
from slmc.ir import DType, Node
from slmc.kernels.onnx import GraphCallContext, _need, _reg

F32, F64, I32, I64 = DType.F32, DType.F64, DType.I32, DType.I64
NUMERIC = tuple(d for d in DType if d != DType.BOOL)
SUMMABLE = (F32, F64, I32, DType.U32, I64, DType.U64)


def _around(shape: tuple[int, ...], axis: int) -> tuple[int, int, int]:
    """A tensor viewed as [outer, n, inner] around `axis`."""
    return math.prod(shape[:axis]), shape[axis], math.prod(shape[axis + 1:])


def _cumsum(n: Node, c: GraphCallContext) -> str:
    x = n.inputs[0]
    assert x is not None
    outer, size, inner = _around(x.shape, n.attrs["axis"] % len(x.shape))
    flags = ", ".join(c_int(n.attrs.get(k, 0), f"CumSum {k}", 0, 1) for k in ("exclusive", "reverse"))
    return f"slmc_cumsum_{x.dtype.short}({c.out()}, {c.ref(0)}, {outer}, {size}, {inner}, {flags});"


def _gather_nd(n: Node, c: GraphCallContext) -> str:
    x, idx = n.inputs[0], n.inputs[1]
    assert x is not None and idx is not None
    _need(idx.dtype in (I32, I64), n, f"{idx.dtype.short} indices")
    b, depth = n.attrs.get("batch_dims", 0), idx.shape[-1]
    batches, per_batch = math.prod(x.shape[:b]), math.prod(idx.shape[b:-1])
    return (f"slmc_gather_nd({c.out()}, {c.ref(0)}, {c.ref(1)}, {idx.dtype.size}, {x.dtype.size}, {batches}, "
            f"{per_batch}, {depth}, {c.ints(list(x.shape[b:b + depth]))}, {math.prod(x.shape[b:])}, "
            f"{math.prod(x.shape[b + depth:])});")


def _is_nan(n: Node, c: GraphCallContext) -> str:
    x = n.inputs[0]
    assert x is not None
    return f"slmc_isnan_{x.dtype.short}({c.out()}, {c.ref(0)}, {x.type.numel});"


def _is_inf(n: Node, c: GraphCallContext) -> str:
    x = n.inputs[0]
    assert x is not None
    flags = ", ".join(c_int(n.attrs.get(k, 1), f"IsInf {k}", 0, 1) for k in ("detect_positive", "detect_negative"))
    return f"slmc_isinf_{x.dtype.short}({c.out()}, {c.ref(0)}, {x.type.numel}, {flags});"


def _top_k(n: Node, c: GraphCallContext) -> str:
    x = n.inputs[0]
    assert x is not None
    outer, size, inner = _around(x.shape, n.attrs.get("axis", -1) % len(x.shape))
    largest = c_int(n.attrs.get("largest", 1), "TopK largest", 0, 1)
    return (f"slmc_topk_{x.dtype.short}({c.out(0)}, {c.out(1)}, {c.ref(0)}, {outer}, {size}, {inner}, "
            f"{c_int(n.attrs['k'], 'TopK k', 0, size)}, {largest});")


_reg(("CumSum",), SUMMABLE, "cumsum.c", _cumsum, deps=())
_reg(("GatherND",), tuple(DType), "gather_nd.c", _gather_nd, deps=())
_reg(("IsNaN",), (F32, F64), "float_class.c", _is_nan, deps=())
_reg(("IsInf",), (F32, F64), "float_class.c", _is_inf, deps=())
_reg(("TopK",), NUMERIC, "topk.c", _top_k, deps=())
