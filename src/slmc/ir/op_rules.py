"""Each operator's own rules: arity, attributes and the output types its inputs give (ir/verify.py runs them).

`infer` re-derives a node's output types from its input types and attributes, and raises an SlmcError
naming the node, the operator and what is wrong where the ONNX specification (or slmc's canonical form
of it, frontend/onnx_canon.py) calls the node invalid. The importer calls it on every node before any
numpy twin runs, so a shape or size read from a model file is never believed: Reshape's element counts,
Split sizes, axes, pads, transposition flags, broadcasting and kernel geometry are all checked here.
The shape arithmetic the kernels and twins use is imported from ir/shapes.py, not rewritten (reshape_target, slice_params,
full_pads, reduce_axes, pool_geometry), so the check and the code it protects read one definition.

Only types are read (and the values of constants the rule needs, e.g. Range's bounds, Gather's constant
indices), so a rule costs microseconds whatever the tensor sizes. Language-model ops built by slmc itself
(lowercase names) get their arity and the simple shape rules; their builders own the rest.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from slmc.errors import SlmcError
from slmc.ir.types import DType, TensorType

Shape = tuple[int, ...]
FIX = "the model file is malformed or its exporter is wrong: fix the model (or export it again)"

UNARY = frozenset("""Neg Abs Sign Relu Sqrt Reciprocal Exp Log Tanh Erf Sigmoid Cos Sin Tan Asin Acos Atan Sinh Cosh
Asinh Acosh Atanh Floor Ceil Round Softplus Softsign LeakyRelu Elu Selu Celu ThresholdedRelu HardSigmoid HardSwish
Mish Gelu Identity""".split())
BINARY = frozenset("Add Sub Mul Div Pow Max Min Mod PRelu".split())
COMPARE = frozenset("Equal Less Greater LessOrEqual GreaterOrEqual And Or Xor".split())
LOGICAL = frozenset("And Or Xor".split())
REDUCE = frozenset("""ReduceL1 ReduceL2 ReduceLogSum ReduceLogSumExp ReduceMax ReduceMean ReduceMin ReduceProd ReduceSum
ReduceSumSquare""".split())
INT_UNARY = frozenset("iSoftmax ITAMax ITAPartialMax iGELU iHardswish TrueIntegerDiv".split())
MAX_RANK = 32  # ONNX sets no limit; the kernels merge axes down to 8, and nothing real comes near 32


def quote(name: str, limit: int = 80) -> str:
    """A name from a model file, quoted for an error message: control characters escaped (a hostile name
    cannot split the one-line error) and cut to `limit` characters."""
    text = "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in str(name))
    return "'" + (text if len(text) <= limit else text[:limit - 3] + "...") + "'"


class Ctx:
    """One node under check: its input types, attributes, and the values of its constant inputs."""

    def __init__(self, op: str, name: str, ins: list[TensorType | None], attrs: dict[str, Any], n_out: int,
                 values: list[np.ndarray | None] | None, mixed: bool = False) -> None:
        self.op, self.name, self.ins, self.attrs, self.n_out = op, name, ins, attrs, n_out
        self.values = values or [None] * len(ins)
        self.mixed = mixed

    def fail(self, what: str, fix: str = FIX) -> SlmcError:
        return SlmcError(f"{self.op} node {quote(self.name)}: {what}", fix)

    def x(self, i: int) -> TensorType:
        t = self.ins[i] if i < len(self.ins) else None
        if t is None:
            raise self.fail(f"input {i} is missing")
        return t

    def opt(self, i: int) -> TensorType | None:
        return self.ins[i] if i < len(self.ins) else None

    def value(self, i: int) -> np.ndarray | None:
        return self.values[i] if i < len(self.values) else None

    def int(self, key: str, default: int | None = None, lo: int | None = None, hi: int | None = None) -> int:
        v = self.attrs.get(key, default)
        if v is None:
            raise self.fail(f"attribute '{key}' is missing")
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
            raise self.fail(f"{key} is {v!r}, must be an integer")
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            rng = f"{lo}..{hi}" if lo is not None and hi is not None else (f">= {lo}" if lo is not None else f"<= {hi}")
            raise self.fail(f"{key} is {v}, must be {rng}" if (lo, hi) != (0, 1) else f"{key} is {v}, must be 0 or 1")
        return int(v)

    def flag(self, key: str, default: int = 0) -> int:
        v = self.attrs.get(key, default)
        if isinstance(v, (float, np.floating)) or v not in (0, 1):
            raise self.fail(f"{key} is {v!r}, must be 0 or 1")
        return int(v)

    def float(self, key: str, default: float) -> float:
        v = self.attrs.get(key, default)
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.integer, np.floating)) \
                or not math.isfinite(float(v)):
            raise self.fail(f"{key} is {v!r}, must be a finite number")
        return float(v)

    def ints(self, key: str, default: list[int] | None = None, required: bool = False) -> list[int] | None:
        v = self.attrs.get(key, default)
        if v is None:
            if required:
                raise self.fail(f"attribute '{key}' is missing")
            return None
        if isinstance(v, np.ndarray):
            v = v.tolist()
        if not isinstance(v, (list, tuple)) or not all(isinstance(e, (int, np.integer)) and not isinstance(e, bool)
                                                       for e in v):
            raise self.fail(f"{key} is {v!r}, must be a list of integers")
        return [int(e) for e in v]

    def axis(self, ax: int, rank: int, what: str = "axis") -> int:
        if not -rank <= ax < rank:
            raise self.fail(f"{what} {ax} is out of range for an input of rank {rank} (must be in {-rank}..{rank - 1})")
        return ax % rank

    def axes(self, axes: list[int], rank: int, what: str = "axes") -> list[int]:
        out = [self.axis(a, rank, "axis" if what == "axes" else what) for a in axes]
        if len(set(out)) != len(out):
            raise self.fail(f"{what} {axes} repeat an axis")
        return out

    def bcast(self, *shapes: Shape) -> Shape:
        try:
            return tuple(int(d) for d in np.broadcast_shapes(*shapes))
        except ValueError:
            raise self.fail(f"input shapes {[list(s) for s in shapes]} do not broadcast") from None

    def onto(self, small: Shape, big: Shape, what: str) -> None:
        """`small` broadcasts onto `big` without growing it (ONNX's unidirectional broadcasting)."""
        if self.bcast(small, big) != tuple(big):
            raise self.fail(f"{what} of shape {list(small)} does not broadcast to {list(big)}")

    def same_dtype(self, ts: list[TensorType]) -> DType:
        kinds = {t.dtype for t in ts}
        # Deeploy's integer networks store integers as float32 beside integer tensors until
        # onnx_deeploy.integerize retypes them: `mixed` lets that pass while the graph is being read
        stored = self.mixed and all(d == DType.F32 or not (d.is_float or d == DType.BOOL) for d in kinds)
        if len(kinds) > 1 and not stored:
            raise self.fail(f"inputs have different element types {[t.dtype.short for t in ts]}")
        return ts[0].dtype

    def out_dtype(self, default: DType) -> DType:
        """Deeploy's integer operators record their storage type (onnx_deeploy.integerize)."""
        dt = self.attrs.get("out_dtype")
        if dt is None:
            return default
        if dt not in DType.__members__:
            raise self.fail(f"out_dtype {dt!r} is not an element type")
        return DType[dt]


Rule = Callable[[Ctx], "list[TensorType] | None"]


@dataclass(frozen=True)
class Spec:
    min_in: int
    max_in: int
    min_out: int
    max_out: int
    rule: Rule | None = None


def T(shape: Shape | list[int], dtype: DType) -> TensorType:
    return TensorType(tuple(int(d) for d in shape), dtype)


# ---- element-wise ----------------------------------------------------------------------------------------

def _unary(c: Ctx) -> list[TensorType]:
    x = c.x(0)
    for key, default in (("alpha", 0.0), ("beta", 0.0), ("gamma", 0.0)):
        if key in c.attrs:
            c.float(key, default)
    if c.op == "Gelu" and c.attrs.get("approximate", "none") not in ("none", "tanh"):
        raise c.fail(f"approximate is {c.attrs['approximate']!r}, must be 'none' or 'tanh'")
    return [T(x.shape, c.out_dtype(x.dtype))]


def _not(c: Ctx) -> list[TensorType]:
    if c.x(0).dtype != DType.BOOL:
        raise c.fail(f"input is {c.x(0).dtype.short}, must be bool")
    return [c.x(0)]


def _binary(c: Ctx) -> list[TensorType]:
    x, y = c.x(0), c.x(1)
    if c.op != "Pow":  # Pow alone takes an exponent of another type
        c.same_dtype([x, y])
    if c.op == "Mod":
        c.flag("fmod")
    shape = c.bcast(x.shape, y.shape)
    if c.op == "PRelu":
        c.onto(y.shape, x.shape, "slope")
    return [T(shape, x.dtype)]


def _compare(c: Ctx) -> list[TensorType]:
    x, y = c.x(0), c.x(1)
    dt = c.same_dtype([x, y])
    if c.op in LOGICAL and dt != DType.BOOL:
        raise c.fail(f"inputs are {dt.short}, must be bool")
    return [T(c.bcast(x.shape, y.shape), DType.BOOL)]


def _where(c: Ctx) -> list[TensorType]:
    cond, x, y = c.x(0), c.x(1), c.x(2)
    if cond.dtype != DType.BOOL:
        raise c.fail(f"the condition is {cond.dtype.short}, must be bool")
    return [T(c.bcast(cond.shape, x.shape, y.shape), c.same_dtype([x, y]))]


def _clip(c: Ctx) -> list[TensorType]:
    x = c.x(0)
    for i, what in ((1, "min"), (2, "max")):
        b = c.opt(i)
        if b is not None and (b.numel != 1 or b.dtype != x.dtype):
            raise c.fail(f"{what} is {b}, must be one {x.dtype.short} value")
    return [x]


def _cast(c: Ctx) -> list[TensorType]:
    to = c.attrs.get("to")
    if not isinstance(to, DType):
        raise c.fail(f"'to' is {to!r}, not an element type slmc supports" if to is not None else "attribute 'to' is missing")
    return [T(c.x(0).shape, to)]


# ---- matrix products and normalisation --------------------------------------------------------------------

def _matmul(c: Ctx) -> list[TensorType]:
    a, b = c.x(0), c.x(1)
    if not a.shape or not b.shape:
        raise c.fail("an input is a scalar (MatMul takes tensors of rank >= 1)")
    dt = c.same_dtype([a, b]) if c.op == "MatMul" else a.dtype
    a2 = a.shape if len(a.shape) >= 2 else (1,) + a.shape
    b2 = b.shape if len(b.shape) >= 2 else b.shape + (1,)
    if a2[-1] != b2[-2]:
        raise c.fail(f"inner dimensions differ: {list(a.shape)} @ {list(b.shape)}")
    batch = c.bcast(a2[:-2], b2[:-2])
    return [T(batch + a2[-2:-1] * (len(a.shape) >= 2) + b2[-1:] * (len(b.shape) >= 2), c.out_dtype(dt))]


def _gemm(c: Ctx) -> list[TensorType]:
    a, b, cc = c.x(0), c.x(1), c.opt(2)
    if len(a.shape) != 2 or len(b.shape) != 2:
        raise c.fail(f"A {list(a.shape)} and B {list(b.shape)} must be matrices")
    ta, tb = c.flag("transA"), c.flag("transB")
    c.float("alpha", 1.0)
    c.float("beta", 1.0)
    m, k = (a.shape[1], a.shape[0]) if ta else a.shape
    k2, n = (b.shape[1], b.shape[0]) if tb else b.shape
    if k != k2:
        raise c.fail(f"inner dimensions differ: A {list(a.shape)} (transA={ta}) and B {list(b.shape)} (transB={tb})")
    if cc is not None:
        c.onto(cc.shape, (m, n), "C")
    dt = c.same_dtype([a, b]) if c.op == "Gemm" else a.dtype
    return [T((m, n), c.out_dtype(dt))]


def _softmax(c: Ctx) -> list[TensorType]:
    x = c.x(0)
    c.axis(c.int("axis", -1), len(x.shape))
    c.flag("legacy")
    return [x]


def _layer_norm(c: Ctx) -> list[TensorType]:
    x, w, b = c.x(0), c.x(1), c.opt(2)
    r = len(x.shape)
    ax = c.axis(c.int("axis", -1), r)
    eps = c.float("epsilon", 1e-5)
    if eps < 0:
        raise c.fail(f"epsilon is {eps}, must not be negative")
    c.onto(w.shape, x.shape[ax:], "the scale")
    if b is not None:
        c.onto(b.shape, x.shape[ax:], "the bias")
    stat = T(x.shape[:ax] + (1,) * (r - ax), DType.F32)
    return [x, stat, stat][:c.n_out]


# ---- reductions ---------------------------------------------------------------------------------------------

def _reduce(c: Ctx) -> list[TensorType]:
    from slmc.ir.shapes import reduce_axes

    x = c.x(0)
    keep = c.flag("keepdims", 1)
    c.flag("noop_with_empty_axes")
    c.axes(c.ints("axes") or [], len(x.shape))
    red = reduce_axes(len(x.shape), c.attrs)
    shape = [1 if d in red else n for d, n in enumerate(x.shape) if keep or d not in red]
    return [T(shape, x.dtype)]


def _arg_reduce(c: Ctx) -> list[TensorType]:
    x = c.x(0)
    ax = c.axis(c.int("axis", 0), len(x.shape))
    keep = c.flag("keepdims", 1)
    c.flag("select_last_index")
    if x.shape[ax] == 0 and math.prod(d for i, d in enumerate(x.shape) if i != ax) > 0:
        raise c.fail(f"axis {ax} of {list(x.shape)} is empty: there is no index to return")
    return [T([1 if d == ax else n for d, n in enumerate(x.shape) if keep or d != ax], DType.I64)]


def _integer_mean(c: Ctx) -> list[TensorType]:
    x = c.x(0)
    keep = c.flag("keepdims", 1)
    axes = c.axes(c.ints("axes") or list(range(len(x.shape))), len(x.shape))
    return [T([1 if d in axes else n for d, n in enumerate(x.shape) if keep or d not in axes], c.out_dtype(x.dtype))]


def _registry() -> dict[str, Spec]:
    from slmc.ir import op_rules_index as ix
    from slmc.ir import op_rules_quant as q
    from slmc.ir import op_rules_quant_lut as ql
    from slmc.ir import op_rules_spatial as sp
    from slmc.ir import op_rules_tensor as t

    many = 1 << 16
    specs: dict[str, Spec] = {
        **{op: Spec(1, 1, 1, 1, _unary) for op in UNARY},
        **{op: Spec(2, 2, 1, 1, _binary) for op in BINARY},
        **{op: Spec(2, 2, 1, 1, _compare) for op in COMPARE},
        **{op: Spec(1, 1, 1, 1, _reduce) for op in REDUCE},
        "Not": Spec(1, 1, 1, 1, _not), "Where": Spec(3, 3, 1, 1, _where), "Clip": Spec(1, 3, 1, 1, _clip),
        "Cast": Spec(1, 1, 1, 1, _cast),
        "MatMul": Spec(2, 2, 1, 1, _matmul), "IntMatMul": Spec(2, 2, 1, 1, _matmul),
        "Gemm": Spec(2, 3, 1, 1, _gemm), "IntGemm": Spec(2, 3, 1, 1, _gemm),
        "Softmax": Spec(1, 1, 1, 1, _softmax), "LogSoftmax": Spec(1, 1, 1, 1, _softmax),
        "LayerNormalization": Spec(2, 3, 1, 3, _layer_norm),
        "ArgMax": Spec(1, 1, 1, 1, _arg_reduce), "ArgMin": Spec(1, 1, 1, 1, _arg_reduce),
        "Reshape": Spec(1, 1, 1, 1, t.reshape), "Flatten": Spec(1, 1, 1, 1, t.flatten),
        "Squeeze": Spec(1, 1, 1, 1, t.squeeze), "Unsqueeze": Spec(1, 1, 1, 1, t.unsqueeze),
        "Transpose": Spec(1, 1, 1, 1, t.transpose), "Concat": Spec(1, many, 1, 1, t.concat),
        "Split": Spec(1, 1, 1, many, t.split), "Slice": Spec(1, 1, 1, 1, t.slice_), "Pad": Spec(1, 1, 1, 1, t.pad),
        "Expand": Spec(1, 1, 1, 1, t.expand), "Tile": Spec(1, 1, 1, 1, t.tile), "Gather": Spec(2, 2, 1, 1, t.gather),
        "Trilu": Spec(1, 1, 1, 1, t.trilu), "ConstantOfShape": Spec(0, 0, 1, 1, t.constant_of_shape),
        "Range": Spec(3, 3, 1, 1, t.range_), "Shape": Spec(1, 1, 1, 1, t.shape), "Size": Spec(1, 1, 1, 1, t.size),
        "CumSum": Spec(1, 1, 1, 1, ix.cumsum), "GatherND": Spec(2, 2, 1, 1, ix.gather_nd),
        "IsNaN": Spec(1, 1, 1, 1, ix.float_class), "IsInf": Spec(1, 1, 1, 1, ix.float_class),
        "TopK": Spec(1, 1, 2, 2, ix.top_k),
        "Conv": Spec(2, 3, 1, 1, t.conv), "MaxPool": Spec(1, 1, 1, 2, t.max_pool),
        "AveragePool": Spec(1, 1, 1, 1, sp.average_pool), "BatchNormalization": Spec(5, 5, 1, 3, sp.batch_norm),
        "ConvTranspose": Spec(2, 3, 1, 1, sp.conv_transpose), "InstanceNormalization": Spec(3, 3, 1, 1, sp.group_norm),
        "GroupNormalization": Spec(3, 3, 1, 1, sp.group_norm), "Resize": Spec(3, 3, 1, 1, sp.resize),
        "QuantizeLinear": Spec(2, 3, 1, 1, q.quantize_linear), "DequantizeLinear": Spec(2, 3, 1, 1, q.dequantize_linear),
        "ConvInteger": Spec(2, 4, 1, 1, q.conv_integer), "MatMulInteger": Spec(2, 4, 1, 1, q.matmul_integer),
        "Requantize": Spec(3, 4, 1, 1, q.requantize),
        "QLinearGlobalAveragePool": Spec(4, 4, 1, 1, q.qlinear_global_average_pool),
        "QLinearAdd": Spec(3, 3, 1, 1, q.qlinear_add),
        "QLinearLookup": Spec(2, 2, 1, 1, ql.lookup), "QLinearMul": Spec(6, 6, 1, 1, ql.mul),
        "QLinearSoftmax": Spec(4, 4, 1, 1, ql.softmax), "QuantizeAfterZp": Spec(3, 3, 1, 1, ql.quantize_after_zp),
        **{op: Spec(1, 1, 1, 1, _unary) for op in INT_UNARY},
        "RequantShift": Spec(3, 3, 1, 1, t.params_onto_x), "iRMSNorm": Spec(2, 2, 1, 1, t.params_onto_x),
        "iLayerNorm": Spec(3, 3, 1, 1, t.params_onto_x), "RMSNorm": Spec(2, 2, 1, 1, t.params_onto_x),
        "iNoNorm": Spec(3, 3, 1, 1, t.broadcast_all), "IntegerDiv": Spec(2, 2, 1, 1, t.broadcast_all),
        "IntegerMean": Spec(1, 1, 1, 1, _integer_mean),
        # language-model operators: arity, and the shape rules that hold in every layout
        "add": Spec(2, 2, 1, 1, t.llm_same), "swiglu": Spec(2, 2, 1, 1, t.llm_same),
        "rmsnorm": Spec(2, 2, 1, 1, t.llm_same), "layernorm": Spec(2, 3, 1, 1, t.llm_same),
        "gelu": Spec(1, 1, 1, 1, t.llm_same), "geglu": Spec(2, 2, 1, 1, t.llm_same), "relu": Spec(1, 1, 1, 1, t.llm_same),
        "silu": Spec(1, 1, 1, 1, t.llm_same), "scale": Spec(1, 1, 1, 1, t.llm_same),
        "softcap": Spec(1, 1, 1, 1, t.llm_same), "rope": Spec(4, 4, 1, 1, t.llm_same), "kv_write": Spec(3, 3, 1, 1, t.kv_write),
        "embedding": Spec(2, 2, 1, 1), "embedding_q8": Spec(3, 3, 1, 1), "embedding_i8": Spec(3, 3, 1, 1),
        "pos_embedding": Spec(2, 2, 1, 1), "linear": Spec(2, 3, 1, 1), "linear_q8": Spec(4, 5, 1, 1),
        "linear_swiglu": Spec(3, 4, 1, 1), "linear_swiglu_q8": Spec(5, 6, 1, 1), "linear_swiglu_i8": Spec(5, 5, 1, 1),
        "linear_q8_by_row": Spec(4, 5, 1, 1), "quantize_linear_q8": Spec(3, 4, 1, 1),
        "quantize_q8": Spec(1, 1, 2, 2), "quantize_q8_scaled": Spec(2, 2, 2, 2),
        "linear_q8_dots": Spec(2, 2, 1, 1), "q8_absmax": Spec(1, 1, 1, 1), "attention": Spec(4, 4, 1, 1),
        "linear_i8": Spec(3, 3, 1, 1), "linear_i8_partial": Spec(3, 3, 1, 1), "requant_i64": Spec(1, 1, 1, 1),
        "rmsnorm_i": Spec(2, 2, 1, 1), "rope_i": Spec(4, 4, 1, 1), "attention_i": Spec(5, 6, 1, 1),
        "add_i32": Spec(2, 2, 1, 1), "swiglu_i": Spec(3, 3, 1, 1), "reshape": Spec(1, 1, 1, 1),
        "layernorm_i": Spec(3, 3, 1, 1), "bias_i": Spec(2, 2, 1, 1), "scale_i": Spec(1, 1, 1, 1),
        "gelu_i": Spec(2, 2, 1, 1), "relu_i": Spec(1, 1, 1, 1), "narrow_i": Spec(1, 1, 1, 1),
        "softcap_i": Spec(2, 2, 1, 1), "pos_embedding_i8": Spec(3, 3, 1, 1),
        "allreduce_sum": Spec(0, many, 1, 1), "allreduce_max": Spec(0, many, 1, 1), "broadcast": Spec(0, many, 1, 1),
        "moe_topk": Spec(1, 2, 2, 2), "moe_predict": Spec(6, many, 1, 1, t.kv_write), "sigmoid_mul": Spec(2, 2, 1, 1), "moe_experts": Spec(6, 8, 1, 1), "moe_experts_q8": Spec(9, 11, 1, 1),
        "fold_q8": Spec(0, many, 1, 1),  # (collectives: a chip that only receives reads nothing)
        # the per-row forms of a batched step (passes/batch.py): pos and slot per row
        **{f"{op}_rows": Spec(2, many, 1, 1) for op in ("rope", "rope_i", "pos_embedding", "pos_embedding_i8", "attention",
                                                       "attention_i")},
        "kv_write_rows": Spec(3, many, 1, 1, t.kv_write),
    }
    return specs


SPECS: dict[str, Spec] = {}


def infer(op: str, name: str, ins: list[TensorType | None], attrs: dict[str, Any], n_out: int,
          values: list[np.ndarray | None] | None = None, mixed: bool = False) -> list[TensorType] | None:
    """The node's output types by its operator's rules (None where slmc has no shape rule for the op);
    an SlmcError naming the node where the node breaks them. `values`: the data of constant inputs;
    `mixed`: integer and float32 operands may meet (a Deeploy network before integerize)."""
    if not SPECS:
        SPECS.update(_registry())
    spec = SPECS.get(op)
    c = Ctx(op, name, ins, attrs, n_out, values, mixed)
    if spec is None:
        return None
    n_in = len(ins)
    while n_in and ins[n_in - 1] is None:  # absent optional inputs at the end do not count
        n_in -= 1
    for what, n, lo, hi in (("inputs", n_in, spec.min_in, spec.max_in), ("outputs", n_out, spec.min_out, spec.max_out)):
        if not lo <= n <= hi:
            want = str(lo) if lo == hi else f"{lo} to {hi}" if hi < (1 << 16) else f"at least {lo}"
            raise c.fail(f"has {n} {what}, {op} takes {want}")
    for t in ins:
        if t is not None and len(t.shape) > MAX_RANK:
            raise c.fail(f"an input has rank {len(t.shape)}, above slmc's limit of {MAX_RANK}")
    if spec.rule is None:
        return None
    return spec.rule(c)
