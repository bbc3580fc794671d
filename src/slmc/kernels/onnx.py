"""Registry entries of the generic kernels behind ONNX graphs (kernels/c: one file per op family).

The kernels know nothing of shapes beyond what a call passes: the emitters here work out element
counts, broadcast strides (0 on a broadcast axis) and offsets from the static shapes, merge the axes
that can be walked as one, and hand the results over as static const arrays (`ctx.ints`). So one
strided copy serves Transpose, Expand, Slice, Concat, Split, Tile and Pad, and one broadcasting loop
serves every binary operator. Op codes below are the `switch` labels of the C files.
"""

from __future__ import annotations

import math
from typing import Callable, Protocol

import numpy as np

from slmc.cquote import c_float, c_int, comment
from slmc.errors import SlmcError
from slmc.ir import DType, Node, Value
from slmc.ir.numerics import is_ort
from slmc.kernels.overlap import elementwise, in_place
from slmc.kernels.registry import CallContext, KernelSpec, register
from slmc.kernels.tiles import ChunkTiles, GemmTiles
from slmc.ir.shapes import full_pads, reduce_axes, slice_params

F32, F64, I32, I64, BOOL = DType.F32, DType.F64, DType.I32, DType.I64, DType.BOOL
ALL = tuple(DType)
INTEGER = (DType.I8, DType.U8, DType.I16, DType.U16, I32, DType.U32, I64, DType.U64)

UNARY = {op: i for i, op in enumerate(
    "Neg Abs Sign Relu Sqrt Reciprocal Exp Log Tanh Erf Sigmoid Cos Sin Tan Asin Acos Atan Sinh Cosh Asinh Acosh "
    "Atanh Floor Ceil Round Softplus Softsign LeakyRelu Elu Selu Celu ThresholdedRelu HardSigmoid HardSwish Mish "
    "Gelu".split())}
_GELU_TANH = 36
_UNARY_ATTRS = {"LeakyRelu": (0.01, 0, 0), "Elu": (1.0, 0, 0), "Selu": (1.6732632423543772, 0, 1.0507009873554805),
                "Celu": (1.0, 0, 0), "ThresholdedRelu": (1.0, 0, 0), "HardSigmoid": (0.2, 0.5, 0)}
BINARY = {"Add": 0, "Sub": 1, "Mul": 2, "Div": 3, "Pow": 4, "Max": 5, "Min": 6, "Mod": 7, "PRelu": 9}
_FMOD = 8
COMPARE = {"Equal": 0, "Less": 1, "Greater": 2, "LessOrEqual": 3, "GreaterOrEqual": 4, "And": 5, "Or": 6, "Xor": 7}
REDUCE = {"ReduceSum": 0, "ReduceMean": 1, "ReduceMax": 2, "ReduceMin": 3, "ReduceProd": 4, "ReduceSumSquare": 5,
          "ReduceL1": 6, "ReduceL2": 7, "ReduceLogSum": 8, "ReduceLogSumExp": 9}
CAST_CODES = {DType.F32: 0, DType.F64: 1, DType.I8: 2, DType.U8: 3, DType.I16: 4, DType.U16: 5, DType.I32: 6,
              DType.U32: 7, DType.I64: 8, DType.U64: 9, DType.BOOL: 10}
MAX_RANK = 8  # SLMC_MAX_RANK of the C files, after merging axes


class GraphCallContext(CallContext, Protocol):
    def ints(self, values: list[int]) -> str: ...   # name of a static const int32_t array holding values


Emit = Callable[[Node, GraphCallContext], str]


# ---- shapes and strides ---------------------------------------------------------------------------

def contiguous(shape: tuple[int, ...] | list[int]) -> list[int]:
    out, acc = [], 1
    for d in reversed(shape):
        out.append(acc)
        acc *= d
    return list(reversed(out))


def bcast_strides(shape: tuple[int, ...], out: tuple[int, ...]) -> list[int]:
    """Strides of a tensor of `shape` read as `out` under numpy broadcasting (0 on repeated axes)."""
    own = contiguous(shape)
    pad = len(out) - len(shape)
    return [0 if i < pad or shape[i - pad] == 1 else own[i - pad] for i in range(len(out))]


def merge_axes(shape: list[int], strides: list[list[int]], keep_one: bool = True) -> tuple[list[int], list[list[int]]]:
    """Drop axes of size 1 and merge neighbours every operand walks as one axis: fewer, longer loops."""
    sh: list[int] = []
    st: list[list[int]] = [[] for _ in strides]
    for d, n in enumerate(shape):
        if n == 1:
            continue
        if sh and all(s[-1] == o[d] * n for s, o in zip(st, strides)):
            sh[-1] *= n
            for s, o in zip(st, strides):
                s[-1] = o[d]
            continue
        sh.append(n)
        for s, o in zip(st, strides):
            s.append(o[d])
    if not sh and keep_one:
        return [1], [[0] for _ in strides]
    if len(sh) > MAX_RANK:
        raise SlmcError(f"a tensor walk of rank {len(sh)} exceeds the kernels' limit of {MAX_RANK}",
                        "reshape the model's tensors to at most 8 dimensions")
    return sh, st


def _walk(c: GraphCallContext, shape: list[int], strides: list[list[int]]) -> str:
    sh, st = merge_axes(list(shape), strides)
    return f"{len(sh)}, {c.ints(sh)}, {c.ints([x for s in st for x in s])}"


_f = c_float  # attribute values reach C as numbers or not at all (cquote.py)


def _at(c: GraphCallContext, i: int, off: int) -> str:
    return c.ref(i) if off == 0 else f"{c.ref(i)} + {off}"


def _numel(v: Value | None) -> int:
    return 0 if v is None else v.type.numel


def _need(cond: bool, n: Node, what: str) -> None:
    if not cond:
        raise SlmcError(f"ONNX {n.op} node '{n.name}': {what} is not supported by the C kernels",
                        "see docs/ONNX_COVERAGE.md for what each operator accepts")


def _reg(ops: list[str] | tuple[str, ...], dtypes: tuple[DType, ...], c_file: str, emit: Emit,
         macs: Callable[[Node], int] = lambda n: 0, deps: tuple[str, ...] = ("nd.c",),
         overlap: Callable[[Node], tuple] = lambda n: (), where: Callable[[Node], bool] = lambda n: True,
         tiling: object = None) -> None:
    def guarded(n: Node, c: GraphCallContext) -> str:
        if all(o.type.numel == 0 for o in n.outputs):
            return "/* empty output: nothing to compute */"
        return emit(n, c)
    for op in ops:
        for dt in dtypes:
            register(KernelSpec(op, dt, c_file, guarded, macs=macs, deps=deps, overlap=overlap, where=where,  # type: ignore[arg-type]
                                tiling=tiling))


# ---- elementwise ----------------------------------------------------------------------------------

def _unary(n: Node, c: GraphCallContext) -> str:
    code = UNARY[n.op]
    if n.op == "Gelu" and n.attrs.get("approximate", "none") == "tanh":
        code = _GELU_TANH
    al, be, ga = _UNARY_ATTRS.get(n.op, (0, 0, 0))
    al, be, ga = n.attrs.get("alpha", al), n.attrs.get("beta", be), n.attrs.get("gamma", ga)
    return (f"slmc_unary_f32({c.out()}, {c.ref(0)}, {_numel(n.outputs[0])}, {code} {comment(n.op)}, "
            f"{_f(al)}, {_f(be)}, {_f(ga)});")


def _broadcast(n: Node, c: GraphCallContext, fn: str, code: int) -> str:
    out = n.outputs[0].shape
    ins = [v for v in n.inputs if v is not None]
    _need(all(v.dtype == ins[0].dtype for v in ins), n, "inputs of different types")
    strides = [contiguous(out)] + [bcast_strides(v.shape, out) for v in ins]
    return f"{fn}({c.out()}, {c.ref(0)}, {c.ref(1)}, {code} {comment(n.op)}, {_walk(c, list(out), strides)});"


def _binary(n: Node, c: GraphCallContext) -> str:
    code = _FMOD if n.op == "Mod" and n.attrs.get("fmod", 0) else BINARY[n.op]
    dt = n.inputs[0].dtype  # type: ignore[union-attr]
    _need(dt == F32 or n.op not in ("Pow", "PRelu"), n, f"{n.op} on {dt.short}")
    return _broadcast(n, c, f"slmc_binary_{dt.short}", code)


def _compare(n: Node, c: GraphCallContext) -> str:
    dt = n.inputs[0].dtype  # type: ignore[union-attr]
    return _broadcast(n, c, f"slmc_compare_{'bool' if dt == BOOL else dt.short}", COMPARE[n.op])


def _clip(n: Node, c: GraphCallContext) -> str:
    return f"slmc_clip_f32({c.out()}, {c.ref(0)}, {_numel(n.outputs[0])}, {c.ref(1)}, {c.ref(2)});"


def _where(n: Node, c: GraphCallContext) -> str:
    out = n.outputs[0]
    strides = [contiguous(out.shape)] + [bcast_strides(v.shape, out.shape) for v in n.inputs]  # type: ignore[union-attr]
    return (f"slmc_where({c.out()}, {c.ref(0)}, {c.ref(1)}, {c.ref(2)}, {out.dtype.size}, "
            f"{_walk(c, list(out.shape), strides)});")


def _cast(n: Node, c: GraphCallContext) -> str:
    x, y = n.inputs[0], n.outputs[0]
    return (f"slmc_cast({c.out()}, {CAST_CODES[y.dtype]} /* {y.dtype.short} */, {c.ref(0)}, "
            f"{CAST_CODES[x.dtype]} /* {x.dtype.short} */, {y.type.numel});")  # type: ignore[union-attr]


# ---- data movement: one strided copy ---------------------------------------------------------------

def _copy(c: GraphCallContext, out: str, src: str, elem: int, shape: list[int], so: list[int], sx: list[int]) -> str:
    return f"slmc_copy_nd({out}, {src}, {elem}, {_walk(c, shape, [so, sx])});"


def _transpose(n: Node, c: GraphCallContext) -> str:
    x, y = n.inputs[0], n.outputs[0]
    perm = n.attrs.get("perm") or list(reversed(range(len(x.shape))))  # type: ignore[union-attr]
    xs = contiguous(x.shape)  # type: ignore[union-attr]
    return _copy(c, c.out(), c.ref(0), y.dtype.size, list(y.shape), contiguous(y.shape), [xs[p] for p in perm])


def _expand(n: Node, c: GraphCallContext) -> str:
    x, y = n.inputs[0], n.outputs[0]
    return _copy(c, c.out(), c.ref(0), y.dtype.size, list(y.shape), contiguous(y.shape),
                 bcast_strides(x.shape, y.shape))  # type: ignore[union-attr]


def _tile(n: Node, c: GraphCallContext) -> str:
    x, y = n.inputs[0], n.outputs[0]
    shape, so, sx = [], [], []
    for d, (rep, xs, ys) in enumerate(zip(n.attrs["repeats"], contiguous(x.shape), contiguous(y.shape))):  # type: ignore
        size = x.shape[d]  # type: ignore[union-attr]
        shape += [rep, size]
        so += [size * ys, ys]
        sx += [0, xs]
    return _copy(c, c.out(), c.ref(0), y.dtype.size, shape, so, sx)


def _slice(n: Node, c: GraphCallContext) -> str:
    x, y = n.inputs[0], n.outputs[0]
    xs = contiguous(x.shape)  # type: ignore[union-attr]
    ps = slice_params(x.shape, n.attrs)  # type: ignore[union-attr]
    off = sum(s * st for (s, _, _), st in zip(ps, xs))
    return _copy(c, c.out(), _at(c, 0, off), y.dtype.size, [p[2] for p in ps], contiguous(y.shape),
                 [sp * st for (_, sp, _), st in zip(ps, xs)])


def _concat(n: Node, c: GraphCallContext) -> str:
    y = n.outputs[0]
    axis = n.attrs["axis"] % len(y.shape)
    ys, calls, pos = contiguous(y.shape), [], 0
    for i, v in enumerate(n.inputs):
        if v is None or v.type.numel == 0:
            continue
        out = c.out() if pos == 0 else f"{c.out()} + {pos * ys[axis]}"
        calls.append(_copy(c, out, c.ref(i), y.dtype.size, list(v.shape), ys, contiguous(v.shape)))
        pos += v.shape[axis]
    return "\n    ".join(calls)


def _split(n: Node, c: GraphCallContext) -> str:
    x = n.inputs[0]
    axis = n.attrs["axis"]
    xs, calls, pos = contiguous(x.shape), [], 0  # type: ignore[union-attr]
    for i, y in enumerate(n.outputs):
        if y.type.numel:
            calls.append(_copy(c, c.out(i), _at(c, 0, pos * xs[axis]), y.dtype.size, list(y.shape),
                               contiguous(y.shape), xs))
        pos += y.shape[axis]
    return "\n    ".join(calls)


def _pad(n: Node, c: GraphCallContext) -> str:
    x, y = n.inputs[0], n.outputs[0]
    _need(n.attrs.get("mode", "constant") == "constant", n, f"mode '{n.attrs.get('mode')}'")
    r = len(y.shape)
    pads = full_pads(r, n.attrs)
    value = n.attrs.get("value", 0)
    whole = math.trunc(value) if isinstance(value, (float, np.floating)) and math.isfinite(value) else value  # as int() did
    lit = _f(value) if y.dtype.is_float else c_int(whole, "Pad's value", -2**63 + 1, 2**63 - 1)
    fill = f"slmc_fill({c.out()}, &({y.dtype.c}){{{lit}}}, {y.dtype.size}, {y.type.numel});"
    xs, ys = contiguous(x.shape), contiguous(y.shape)  # type: ignore[union-attr]
    xoff = sum(max(0, -pads[d]) * xs[d] for d in range(r))
    yoff = sum(max(0, pads[d]) * ys[d] for d in range(r))
    shape = [x.shape[d] - max(0, -pads[d]) - max(0, -pads[d + r]) for d in range(r)]  # type: ignore[union-attr]
    if min(shape, default=1) <= 0:
        return fill
    out = c.out() if yoff == 0 else f"{c.out()} + {yoff}"
    return fill + "\n    " + _copy(c, out, _at(c, 0, xoff), y.dtype.size, shape, ys, xs)


def _gather(n: Node, c: GraphCallContext) -> str:
    x, idx, y = n.inputs[0], n.inputs[1], n.outputs[0]
    assert x is not None and idx is not None
    _need(idx.dtype in (I32, I64), n, f"{idx.dtype.short} indices")
    axis = n.attrs.get("axis", 0) % len(x.shape)
    outer, inner = math.prod(x.shape[:axis]), math.prod(x.shape[axis + 1:])
    return (f"slmc_gather({c.out()}, {c.ref(0)}, {c.ref(1)}, {idx.dtype.size}, {y.dtype.size}, {outer}, "
            f"{x.shape[axis]}, {inner}, {idx.type.numel});")


def _trilu(n: Node, c: GraphCallContext) -> str:
    y = n.outputs[0]
    _need(len(y.shape) >= 2, n, "a tensor of rank < 2")
    return (f"slmc_trilu({c.out()}, {c.ref(0)}, {y.dtype.size}, {math.prod(y.shape[:-2])}, {y.shape[-2]}, "
            f"{y.shape[-1]}, {c_int(n.attrs.get('k', 0), 'Trilu k')}, {c_int(n.attrs.get('upper', 1), 'Trilu upper')});")


# ---- matrix products, reductions, normalisation -------------------------------------------------------

def _mm_dims(n: Node) -> tuple[int, int, int, list[int], list[int], list[int]]:
    a, b = n.inputs[0].shape, n.inputs[1].shape  # type: ignore[union-attr]
    a2 = a if len(a) >= 2 else (1,) + a
    b2 = b if len(b) >= 2 else b + (1,)
    m, k, nn = a2[-2], a2[-1], b2[-1]
    batch = tuple(int(d) for d in np.broadcast_shapes(a2[:-2], b2[:-2]))
    return m, k, nn, list(batch), bcast_strides(a2[:-2], batch), bcast_strides(b2[:-2], batch)


def _matmul(n: Node, c: GraphCallContext) -> str:
    m, k, nn, batch, sa, sb = _mm_dims(n)
    so = contiguous(batch)
    sh, st = merge_axes(batch, [[s * m * nn for s in so], [s * m * k for s in sa], [s * k * nn for s in sb]])
    return (f"slmc_matmul_f32({c.out()}, {c.ref(0)}, {c.ref(1)}, {m}, {k}, {nn}, {len(sh)}, {c.ints(sh)}, "
            f"{c.ints([x for s in st for x in s])});")


def _matmul_macs(n: Node) -> int:
    m, k, nn, batch, _, _ = _mm_dims(n)
    return m * k * nn * math.prod(batch)


def gemm_dims(n: Node) -> tuple[int, ...]:
    """Gemm's m, k, n and the row/column strides of A, B and the broadcast C (0, 0 without C), in elements."""
    a, b, cc = n.inputs[0], n.inputs[1], n.inputs[2] if len(n.inputs) > 2 else None
    assert a is not None and b is not None
    ta, tb = n.attrs.get("transA", 0), n.attrs.get("transB", 0)
    m, k = (a.shape[1], a.shape[0]) if ta else a.shape
    nn = b.shape[0] if tb else b.shape[1]
    ars, acs = (1, a.shape[1]) if ta else (a.shape[1], 1)
    brs, bcs = (1, b.shape[1]) if tb else (b.shape[1], 1)
    crs, ccs = bcast_strides(cc.shape, (m, nn)) if cc is not None else (0, 0)
    return m, k, nn, ars, acs, brs, bcs, crs, ccs


def _gemm(n: Node, c: GraphCallContext) -> str:
    m, k, nn, ars, acs, brs, bcs, crs, ccs = gemm_dims(n)
    return (f"slmc_gemm_f32({c.out()}, {c.ref(0)}, {c.ref(1)}, {c.ref(2)}, {m}, {k}, {nn}, {ars}, {acs}, {brs}, {bcs}, "
            f"{crs}, {ccs}, {_f(n.attrs.get('alpha', 1.0))}, {_f(n.attrs.get('beta', 1.0))});")


def _reduce(n: Node, c: GraphCallContext) -> str:
    x, y = n.inputs[0], n.outputs[0]
    assert x is not None
    axes = reduce_axes(len(x.shape), n.attrs)
    xs = contiguous(x.shape)
    if not axes:
        return f"memcpy({c.out()}, {c.ref(0)}, {y.nbytes});"
    kept = [d for d in range(len(x.shape)) if d not in axes]
    ksh, kst = merge_axes([x.shape[d] for d in kept], [[xs[d] for d in kept]], keep_one=False)
    rsh, rst = merge_axes([x.shape[d] for d in axes], [[xs[d] for d in axes]], keep_one=False)
    if any(x.shape[d] == 0 for d in axes):
        rsh, rst = [0], [[0]]  # an empty reduction: the kernel writes the identity element
    return (f"slmc_reduce_f32({c.out()}, {c.ref(0)}, {REDUCE[n.op]} {comment(n.op)}, {len(ksh)}, {c.ints(ksh)}, "
            f"{c.ints(kst[0])}, {len(rsh)}, {c.ints(rsh)}, {c.ints(rst[0])});")


def _arg_reduce(n: Node, c: GraphCallContext) -> str:
    x = n.inputs[0]
    assert x is not None
    axis = n.attrs.get("axis", 0) % len(x.shape)
    last = c_int(n.attrs.get("select_last_index", 0), f"{n.op} select_last_index")
    return (f"slmc_argreduce_f32({c.out()}, {c.ref(0)}, {int(n.op == 'ArgMin')}, {last}, "
            f"{math.prod(x.shape[:axis])}, {x.shape[axis]}, {math.prod(x.shape[axis + 1:])});")


def _softmax_dims(n: Node) -> tuple[int, int, int]:
    shape = n.outputs[0].shape
    axis = n.attrs.get("axis", -1) % max(len(shape), 1)
    if n.attrs.get("legacy"):
        return math.prod(shape[:axis]), math.prod(shape[axis:]), 1
    return math.prod(shape[:axis]), shape[axis], math.prod(shape[axis + 1:])


def _softmax(n: Node, c: GraphCallContext) -> str:
    outer, mid, inner = _softmax_dims(n)
    return f"slmc_softmax_f32({c.out()}, {c.ref(0)}, {outer}, {mid}, {inner}, {int(n.op == 'LogSoftmax')});"


def _softmax_overlap(n: Node) -> tuple:
    """softmax_f32.c reads a whole line (its maximum) before it writes it, then writes element j after
    reading it: along the last axis that is memory order; along another axis the lines interleave, so
    only the exact overlay, in the kernel's order (line, then j)."""
    outer, mid, inner = _softmax_dims(n)
    if inner == 1:
        return elementwise(0)(n)
    e = np.arange(outer * mid * inner)
    step = ((e // (mid * inner)) * inner + e % inner) * mid + (e // inner) % mid
    return in_place(0, lambda n: step, "lines along the axis, one after another")(n)


def _layer_norm(n: Node, c: GraphCallContext) -> str:
    x = n.inputs[0]
    assert x is not None
    axis = n.attrs.get("axis", -1) % len(x.shape)
    outer, size = math.prod(x.shape[:axis]), math.prod(x.shape[axis:])
    for i in (1, 2):
        v = n.inputs[i] if i < len(n.inputs) else None
        _need(v is None or (v.type.numel == size and v.dtype == F32), n, "a scale or bias broadcast over the normalised axes")
    outs = [c.out(i) if i < len(n.outputs) else "NULL" for i in range(3)]
    return (f"slmc_layer_normalization_f32({outs[0]}, {outs[1]}, {outs[2]}, {c.ref(0)}, {c.ref(1)}, {c.ref(2)}, "
            f"{outer}, {size}, {_f(n.attrs.get('epsilon', 1e-5))});")


# ---- the registry --------------------------------------------------------------------------------------

# element-wise kernels walk their operands in memory order (an operand of the output's shape: contiguous, no
# broadcast), so an output may lie over such an operand at or below it (kernels/overlap.py)
# a node the ONNX frontend marked for onnxruntime's numerics takes kernels/onnx_ort.py's kernel instead
_reg(tuple(UNARY), (F32,), "unary_f32.c", _unary, deps=(), overlap=elementwise(0), where=lambda n: not is_ort(n.attrs),
     tiling=ChunkTiles((0,)))
_reg(("Clip",), (F32,), "unary_f32.c", _clip, deps=(), overlap=elementwise(0),   # scalar bounds, read before the walk
     tiling=ChunkTiles((0,)))
_reg(("Not",), (BOOL,), "compare.c", lambda n, c: f"slmc_not_bool({c.out()}, {c.ref(0)}, {_numel(n.outputs[0])});")
_reg(tuple(BINARY), (F32,), "binary_f32.c", _binary, overlap=elementwise(0, 1), tiling=ChunkTiles((0, 1)))  # tiled: no broadcast
_reg(("Add", "Sub", "Mul", "Div", "Max", "Min", "Mod"), INTEGER, "binary_int.c", _binary, overlap=elementwise(0, 1))
_reg(("Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual"), (F32, *INTEGER), "compare.c", _compare)
_reg(("Equal", "And", "Or", "Xor"), (BOOL,), "compare.c", _compare)
_reg(("Where",), (BOOL,), "where.c", _where)
_reg(("Cast",), tuple(CAST_CODES), "cast.c", _cast, deps=())
_reg(("Transpose",), ALL, "copy_nd.c", _transpose)
_reg(("Expand",), ALL, "copy_nd.c", _expand)
_reg(("Tile",), ALL, "copy_nd.c", _tile)
_reg(("Slice",), ALL, "copy_nd.c", _slice)
_reg(("Concat",), ALL, "copy_nd.c", _concat)
_reg(("Split",), ALL, "copy_nd.c", _split)
_reg(("Pad",), ALL, "copy_nd.c", _pad)
_reg(("Gather",), ALL, "gather.c", _gather, deps=())
_reg(("Trilu",), ALL, "trilu.c", _trilu, deps=())
_reg(("MatMul",), (F32,), "matmul_f32.c", _matmul, macs=_matmul_macs, deps=("nd.c", "mm_f32.c"), tiling=GemmTiles(),
     where=lambda n: not is_ort(n.attrs))  # (onnxruntime's order in quantized graphs: kernels/onnx_ort.py)
_reg(("Gemm",), (F32,), "matmul_f32.c", _gemm, deps=("nd.c", "mm_f32.c"), tiling=GemmTiles(),
     macs=lambda n: n.outputs[0].type.numel * (n.inputs[0].shape[0 if n.attrs.get("transA") else 1]))  # type: ignore
_reg(tuple(REDUCE), (F32,), "reduce_f32.c", _reduce, tiling=ChunkTiles((0,), kind="plane"))  # tiled: spatial axes only
_reg(("ArgMax", "ArgMin"), (F32,), "reduce_f32.c", _arg_reduce)
_reg(("Softmax", "LogSoftmax"), (F32,), "softmax_f32.c", _softmax, deps=(), overlap=_softmax_overlap)
_reg(("LayerNormalization",), (F32,), "layer_normalization_f32.c", _layer_norm, deps=(), overlap=elementwise(0),
     where=lambda n: not is_ort(n.attrs))
