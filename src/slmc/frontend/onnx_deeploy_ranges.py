"""Value ranges of an integer network, one rule per operator (onnx_deeploy.integerize runs them).

Each rule reads the proven ranges [lo, hi] of a node's inputs, checks that every intermediate of the
operator's definition (README of the Deeploy tests; reference/deeploy_ops.py) stays inside int64,
gives the output its range and C type, and makes the node's inputs what its kernel takes:
- RequantShift, iSoftmax, ITAMax, ITAPartialMax, iRMSNorm: the range their definition clips or
  normalises to (n_levels); the others: interval arithmetic on their formula;
- custom operators store their output in the smallest type holding its range and read any integer type;
- Add, Sub, Mul compute in int32 (int64 where the bound needs it): narrower operands are widened
  (constants at compile time, activations by a Cast);
- MatMul and Gemm become IntMatMul and IntGemm, Conv stays Conv: operands of any integer type, sums in
  int32/int64;
- data movement (Reshape, Transpose, Slice, Gather, Concat, ...) and MaxPool keep values and types.
An operator without a rule, or a bound that leaves int64, is an error naming the node.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from slmc.errors import SlmcError
from slmc.frontend.onnx_deeploy import integer_values, retype, storage_type
from slmc.ir import DType, Graph, Node, TensorType, Value, ValueKind
from slmc.reference.deeploy_ops import levels, true_integer_div_factor

Rng = tuple[int, int]
I64_MIN, I64_MAX = -(1 << 63), (1 << 63) - 1


def imul(a: Rng, b: Rng) -> Rng:
    p = [a[0] * b[0], a[0] * b[1], a[1] * b[0], a[1] * b[1]]
    return min(p), max(p)


def iadd(a: Rng, b: Rng) -> Rng:
    return a[0] + b[0], a[1] + b[1]


def isub(a: Rng, b: Rng) -> Rng:
    return a[0] - b[1], a[1] - b[0]


def ishr(a: Rng, s: int) -> Rng:
    return a[0] >> s, a[1] >> s


def iclip(a: Rng, lo: int, hi: int) -> Rng:
    return min(max(a[0], lo), hi), min(max(a[1], lo), hi)


def iscale(a: Rng, k: int) -> Rng:
    return imul(a, (k, k))


def mag(a: Rng) -> int:
    return max(abs(a[0]), abs(a[1]))


def sym(m: int) -> Rng:
    return -m, m


class Ranges:
    """The proof in progress: ranges by value, and the node order with inserted conversions."""

    def __init__(self, graph: Graph) -> None:
        self.g = graph
        self.rng: dict[int, Rng] = {}
        self.order: list[Node] = []
        self.widened: dict[tuple[int, DType | tuple[int, ...]], Value] = {}
        self.node: Node | None = None

    def set(self, v: Value, r: Rng) -> None:
        self.rng[id(v)] = r

    def of(self, v: Value | None) -> Rng:
        assert v is not None
        if id(v) not in self.rng:
            if v.kind != ValueKind.CONST:
                raise AssertionError(f"no range for {v.name}")
            data = integer_values(v.data, f"constant '{v.name}' of an integer network",  # type: ignore[arg-type]
                                  "an integer network's weights must be integers")
            lo, hi = (int(data.min()), int(data.max())) if data.size else (0, 0)
            d = storage_type(lo, hi)
            if d is None:
                raise SlmcError(f"constant '{v.name}' exceeds int64", "check the model")
            v.data = np.asarray(data.astype(d.np), order="C")
            retype(v, d)
            self.set(v, (lo, hi))
        return self.rng[id(v)]

    def run(self) -> None:
        for n in list(self.g.nodes):
            self.node = n
            rule = RULES.get(n.op)
            if rule is None:
                raise SlmcError(f"{n.op} node '{n.name}' in an integer network: slmc has no range rule for it",
                                "integer networks may use Deeploy's operators and MatMul, Gemm, Add, Sub, Mul and "
                                "data movement (docs/ONNX_COVERAGE.md)")
            rule(self, n)
            self.order.append(n)
        self.g.nodes = self.order

    # ---- checks and outputs -------------------------------------------------------------------------
    def check(self, r: Rng, what: str) -> Rng:
        n = self.node
        assert n is not None
        if r[0] < I64_MIN or r[1] > I64_MAX:
            raise SlmcError(f"{n.op} node '{n.name}': {what} may reach {mag(r)}, beyond int64",
                            "narrow the ranges of its inputs (requantize them first)")
        return r

    def out(self, n: Node, r: Rng, acc: bool = False, i: int = 0) -> DType:
        self.check(r, "the output")
        d = storage_type(*r)
        if acc:
            d = DType.I32 if d in (DType.I8, DType.U8, DType.I16, DType.I32) else DType.I64
        assert d is not None
        retype(n.outputs[i], d)
        n.attrs["out_dtype"] = d.name
        self.set(n.outputs[i], r)
        return d

    # ---- making inputs what the kernel takes ---------------------------------------------------------
    def _replace(self, n: Node, i: int, new: Value) -> None:
        old = n.inputs[i]
        assert old is not None
        n.inputs[i] = new
        old.users.remove(n)
        new.users.append(n)

    def widen(self, n: Node, i: int, d: DType) -> None:
        """Input i converted to type d (constants now, activations by a Cast node)."""
        v = n.inputs[i]
        if v is None or v.dtype == d:
            return
        r = self.of(v)
        key = (id(v), d)
        if key not in self.widened:
            if v.kind == ValueKind.CONST:
                new = self.g.add_const(self.g.unique(f"{v.name}.{d.short}"), v.data.astype(d.np))  # type: ignore
            else:
                new = self._insert("Cast", v, TensorType(v.shape, d), {"to": d}, f"{v.name}.{d.short}")
            self.set(new, r)
            self.widened[key] = new
        self._replace(n, i, self.widened[key])

    def expand(self, n: Node, i: int, shape: tuple[int, ...]) -> None:
        """Input i broadcast to `shape` (constants now, activations by an Expand node)."""
        v = n.inputs[i]
        if v is None or v.shape == shape:
            return
        r = self.of(v)
        key = (id(v), shape)
        if key not in self.widened:
            if v.kind == ValueKind.CONST:
                data = np.ascontiguousarray(np.broadcast_to(v.data, shape))  # type: ignore[arg-type]
                new = self.g.add_const(self.g.unique(f"{v.name}.full"), data)
            else:
                new = self._insert("Expand", v, TensorType(shape, v.dtype), {"shape": list(shape)}, f"{v.name}.full")
            self.set(new, r)
            self.widened[key] = new
        self._replace(n, i, self.widened[key])

    def _insert(self, op: str, v: Value, t: TensorType, attrs: dict, name: str) -> Value:
        node = self.g.add_node(op, [v], [t], attrs, name=self.g.unique(name))
        self.g.nodes.pop()          # run() keeps the order: the conversion goes just before its reader
        self.order.append(node)
        return node.outputs[0]

    def constant(self, n: Node, i: int, what: str) -> None:
        v = n.inputs[i] if i < len(n.inputs) else None
        if v is None or v.kind != ValueKind.CONST:
            raise SlmcError(f"{n.op} node '{n.name}' takes its {what} from run-time data",
                            "export the network with it as an initializer")


# ---- the rules ------------------------------------------------------------------------------------------

def _requant_shift(r: Ranges, n: Node) -> None:
    r.constant(n, 1, "multiplier")
    r.constant(n, 2, "offset")
    s = n.attrs["shift"]
    pre = iadd(iadd(imul(r.of(n.inputs[0]), r.of(n.inputs[1])), r.of(n.inputs[2])), (1 << s >> 1, 1 << s >> 1))
    r.check(pre, "x * mul + add")
    for i in (1, 2):
        if storage_type(*r.of(n.inputs[i])) not in (DType.I8, DType.U8, DType.I16, DType.I32):
            raise SlmcError(f"RequantShift node '{n.name}' has a multiplier or offset beyond int32",
                            "Deeploy's requantization takes 32-bit parameters")
        r.widen(n, i, DType.I32)
        _per_channel(r, n, i)
    r.out(n, levels(n.attrs["n_levels"], n.attrs["signed"]))


def _per_channel(r: Ranges, n: Node, i: int) -> None:
    """The kernel reads a parameter per channel: one block of adjacent axes; anything else is expanded."""
    x, v, y = n.inputs[0], n.inputs[i], n.outputs[0]
    assert x is not None and v is not None
    if y.shape != x.shape:
        raise SlmcError(f"{n.op} node '{n.name}': its parameters broadcast the input {list(x.shape)} to "
                        f"{list(y.shape)}", "give them at most the input's shape")
    shape = (1,) * (len(y.shape) - len(v.shape)) + tuple(v.shape)
    axes = [d for d, s in enumerate(shape) if s != 1]
    if axes and axes != list(range(axes[0], axes[-1] + 1)):
        r.expand(n, i, y.shape)


def _i_softmax(r: Ranges, n: Node) -> None:
    a = n.attrs
    lo, hi = r.of(n.inputs[0])
    if a["log2"] <= 0 or a["coeffA"] < 0 or a["coeffC"] < 0:
        raise SlmcError(f"iSoftmax node '{n.name}' has log2 {a['log2']}, coeffA {a['coeffA']}, coeffC {a['coeffC']}: "
                        "its terms may be negative, so its output range is not provable",
                        "use log2 > 0 and non-negative coeffA, coeffC (as Deeploy's export does)")
    p = (lo - hi, 31 * a["log2"])
    sq = max((p[0] + a["coeffB"]) ** 2, (p[1] + a["coeffB"]) ** 2)
    e = a["coeffA"] * sq + a["coeffC"]
    r.check((0, e * n.inputs[0].shape[-1]), "the sum of the exponentials")  # type: ignore[union-attr]
    r.check((0, e * (a["n_levels"] - 1)), "an exponential times n_levels - 1")
    r.out(n, (0, a["n_levels"] - 1))


def _ita_max(r: Ranges, n: Node) -> None:
    lo, hi = r.of(n.inputs[0])
    r.check((0, hi - lo + 16), "max(x) - x")
    width = n.inputs[0].shape[-1]  # type: ignore[union-attr]
    if n.op == "ITAPartialMax":
        if width % n.attrs["group_width"]:
            raise SlmcError(f"ITAPartialMax node '{n.name}': group_width {n.attrs['group_width']} does not divide the "
                            f"row length {width}", "choose a group width that divides it")
        r.out(n, (0, max(0, n.attrs["n_levels"] // 2 - 1)))
    else:
        r.out(n, (0, n.attrs["n_levels"] - 1))


def _row_param(r: Ranges, n: Node, i: int) -> None:
    """A per-feature parameter (weight, bias) of a normalisation: one value per element of the last axis."""
    x, v = n.inputs[0], n.inputs[i]
    assert x is not None and v is not None
    size = x.shape[-1]
    if v.type.numel not in (1, size) or (v.type.numel == size and v.shape[-1] != size):
        raise SlmcError(f"{n.op} node '{n.name}': input {i} has shape {list(v.shape)}, not one value per feature",
                        f"give it shape [{size}]")
    if v.shape != (size,):
        if v.kind != ValueKind.CONST:
            raise SlmcError(f"{n.op} node '{n.name}': input {i} must have shape [{size}]", "reshape it when exporting")
        r.expand(n, i, (size,))


def _i_rms_norm(r: Ranges, n: Node) -> None:
    rx = r.of(n.inputs[0])
    _row_param(r, n, 1)
    size = n.inputs[0].shape[-1]  # type: ignore[union-attr]
    r.check((0, mag(rx) ** 2 * size), "the sum of squares")
    r.check(imul(rx, r.of(n.inputs[1])), "x * weight")
    r.out(n, levels(n.attrs["n_levels"], 1))


def _i_layer_norm(r: Ranges, n: Node) -> None:
    rx = r.of(n.inputs[0])
    _row_param(r, n, 1)
    _row_param(r, n, 2)
    size = n.inputs[0].shape[-1]  # type: ignore[union-attr]
    r.check(sym(mag(rx) * size), "the sum")
    t = sym(rx[1] - rx[0])
    r.check((0, t[1] ** 2 * size), "the sum of squared deviations")
    q = r.check(imul(t, r.of(n.inputs[1])), "(x - mean) * weight")
    r.out(n, ishr(r.check(iadd(q, r.of(n.inputs[2])), "the scaled value plus bias"), n.attrs["shift"]))


def _i_gelu(r: Ranges, n: Node) -> None:
    b, one = n.attrs["b"], n.attrs["one"]
    if b > 0:
        raise SlmcError(f"iGELU node '{n.name}' has b = {b}", "I-BERT's GELU takes b <= 0")
    inner = (one - b * b, one)
    big_l = sym(mag(inner))
    r.out(n, r.check(imul(r.of(n.inputs[0]), ishr(iadd((one, one), big_l), 1)), "x * (one + L) / 2"))


def _i_hardswish(r: Ranges, n: Node) -> None:
    a = n.attrs
    rx = r.of(n.inputs[0])
    k = iscale(iclip(iadd(rx, (a["three"], a["three"])), 0, a["six"]), a["one_over_six"])
    r.out(n, r.check(imul(rx, k), "the output"))


def _true_integer_div(r: Ranges, n: Node) -> None:
    if n.attrs["y"] * n.attrs["eta"] + n.attrs["eps"] == 0:
        raise SlmcError(f"TrueIntegerDiv node '{n.name}' divides by y * eta + eps = 0", "check its attributes")
    r.out(n, r.check(iscale(r.of(n.inputs[0]), true_integer_div_factor(n.attrs)), "the output"))


def _full_inputs(r: Ranges, n: Node, count: int) -> None:
    shape = tuple(int(d) for d in np.broadcast_shapes(*(v.shape for v in n.inputs[:count] if v is not None)))
    if n.outputs[0].shape != shape:
        raise AssertionError(n.name)
    for i in range(count):
        r.expand(n, i, shape)


def _i_no_norm(r: Ranges, n: Node) -> None:
    _full_inputs(r, n, 3)
    t = r.check(iadd(imul(r.of(n.inputs[0]), r.of(n.inputs[1])), r.of(n.inputs[2])), "x * w + b")
    r.out(n, ishr(r.check(iscale(t, n.attrs["mul"]), "(x * w + b) * mul"), n.attrs["shift"]))


def _integer_div(r: Ranges, n: Node) -> None:
    _full_inputs(r, n, 2)
    a = n.attrs
    num = r.check(iscale(r.of(n.inputs[0]), a["Delta"] * a["eta"]), "Delta * eta * A")
    den = r.check(iadd(iscale(r.of(n.inputs[1]), a["eta"]), (a["eps"], a["eps"])), "eta * B + eps")
    r.check((0, 2 * mag(num) + 2 * mag(den)), "the rounded quotient")
    r.out(n, sym(mag(num)))  # |den| >= 1 whenever it is not 0 (and x / 0 gives 0)


def _integer_mean(r: Ranges, n: Node) -> None:
    from slmc.ir.shapes import mean_axes

    x = n.inputs[0]
    assert x is not None
    axes = mean_axes(len(x.shape), n.attrs)
    if list(axes) != list(range(axes[0], axes[-1] + 1)):
        raise SlmcError(f"IntegerMean node '{n.name}' averages over the axes {list(axes)}, which are not adjacent",
                        "transpose the averaged axes next to each other first")
    rx = r.of(x)
    r.check(sym(mag(rx) * x.type.numel), "the sum")
    r.out(n, rx)


def _arith(r: Ranges, n: Node) -> None:
    fn = {"Add": iadd, "Sub": isub, "Mul": imul}[n.op]
    d = r.out(n, fn(r.of(n.inputs[0]), r.of(n.inputs[1])), acc=True)
    for i in (0, 1):
        r.widen(n, i, d)
    n.attrs.pop("out_dtype")  # the ONNX twins compute in the (common) input type


def _matmul(r: Ranges, n: Node) -> None:
    a, b = n.inputs[0], n.inputs[1]
    assert a is not None and b is not None
    p = imul(r.of(a), r.of(b))
    k = a.shape[-1] if len(a.shape) > 1 else a.shape[0]
    n.op = "IntMatMul"
    r.out(n, (k * min(p[0], 0), k * max(p[1], 0)), acc=True)


def _gemm(r: Ranges, n: Node) -> None:
    a, b = n.inputs[0], n.inputs[1]
    assert a is not None and b is not None
    for key in ("alpha", "beta"):
        v = float(n.attrs.get(key, 1.0))
        if v != int(v):
            raise SlmcError(f"Gemm node '{n.name}' in an integer network has {key} = {v}", f"use an integer {key}")
        n.attrs[key] = int(v)
    k = a.shape[0] if n.attrs.get("transA", 0) else a.shape[1]
    p = imul(r.of(a), r.of(b))
    acc = r.check(iscale((k * min(p[0], 0), k * max(p[1], 0)), n.attrs["alpha"]), "alpha * A @ B")
    c = n.inputs[2] if len(n.inputs) > 2 else None
    if c is not None:
        acc = iadd(acc, iscale(r.of(c), n.attrs["beta"]))
    n.op = "IntGemm"
    r.out(n, acc, acc=True)


def _conv(r: Ranges, n: Node) -> None:
    x, w = n.inputs[0], n.inputs[1]
    assert x is not None and w is not None
    if len(x.shape) not in (3, 4):
        raise SlmcError(f"Conv node '{n.name}' is {len(x.shape) - 2}-D", "slmc's Conv kernel is 1-D or 2-D (NCHW)")
    p = imul(r.of(x), r.of(w))
    k = math.prod(w.shape[1:])
    acc = r.check((k * min(p[0], 0), k * max(p[1], 0)), "the sum of products")
    b = n.inputs[2] if len(n.inputs) > 2 else None
    r.out(n, iadd(acc, r.of(b)) if b is not None else acc, acc=True)


def _max_pool(r: Ranges, n: Node) -> None:
    if len(n.inputs[0].shape) not in (3, 4) or len(n.outputs) != 1:  # type: ignore[union-attr]
        raise SlmcError(f"MaxPool node '{n.name}' is not a 1-D or 2-D pool with one output",
                        "slmc's MaxPool kernel is 1-D or 2-D (NCHW) without indices")
    _same(r, n)


def _same(r: Ranges, n: Node) -> None:
    for o in n.outputs:
        r.set(o, r.of(n.inputs[0]))
        retype(o, n.inputs[0].dtype)  # type: ignore[union-attr]


def _concat(r: Ranges, n: Node) -> None:
    rs = [r.of(v) for v in n.inputs if v is not None]
    d = r.out(n, (min(x[0] for x in rs), max(x[1] for x in rs)))
    n.attrs.pop("out_dtype")
    for i in range(len(n.inputs)):
        r.widen(n, i, d)


RULES: dict[str, Callable[[Ranges, Node], None]] = {
    "RequantShift": _requant_shift, "iSoftmax": _i_softmax, "ITAMax": _ita_max, "ITAPartialMax": _ita_max,
    "iRMSNorm": _i_rms_norm, "iLayerNorm": _i_layer_norm, "iGELU": _i_gelu, "iHardswish": _i_hardswish,
    "TrueIntegerDiv": _true_integer_div, "iNoNorm": _i_no_norm, "IntegerDiv": _integer_div,
    "IntegerMean": _integer_mean, "Add": _arith, "Sub": _arith, "Mul": _arith, "MatMul": _matmul, "Gemm": _gemm,
    "Concat": _concat, "Conv": _conv, "MaxPool": _max_pool,
    **{op: _same for op in ("Reshape", "Transpose", "Flatten", "Squeeze", "Unsqueeze", "Identity", "Slice", "Split",
                            "Expand", "Tile", "Gather")},
}
