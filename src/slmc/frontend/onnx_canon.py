"""Canonical IR forms of ONNX operators, whatever the opset they came from.

ONNX moved many shape-deciding arguments from attributes to inputs over the opsets (Squeeze axes at 13,
Reduce* axes at 13/18, Split sizes at 13, Slice bounds at 10, Pad at 11, ...). slmc compiles static
shapes, so those inputs must be constants; the importer turns them into attributes here, once, and
every later stage (twins, folding, kernels) reads one form. An input that decides a shape but is only
known at run time is rejected with an error naming the node.

The IR op name is the ONNX op type (CamelCase); the language-model ops are lowercase.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from slmc.errors import SlmcError
from slmc.ir import Value

# operators the importer translates: each has a numpy twin; the C kernels cover those in
# kernels/onnx.py, the rest (Shape, Range, ...) must fold to constants before code generation
SUPPORTED: frozenset[str] = frozenset("""
Abs Acos Acosh Add And ArgMax ArgMin Asin Asinh Atan Atanh AveragePool BatchNormalization Cast CastLike Ceil Celu
Clip Concat Constant ConstantOfShape Conv ConvInteger ConvTranspose Cos Cosh CumSum DequantizeLinear Div Dropout Elu
Equal Erf Exp Expand Flatten
Floor Gather GatherND Gelu Gemm GlobalAveragePool GlobalMaxPool Greater GreaterOrEqual GroupNormalization HardSigmoid
HardSwish Identity InstanceNormalization IsInf IsNaN LayerNormalization LeakyRelu Less LessOrEqual Log LogSoftmax MatMul
MatMulInteger Max MaxPool Mean Min Mish Mod Mul Neg Not Or Pad
Pow PRelu QLinearConv QLinearMatMul QuantizeLinear Range Reciprocal ReduceL1 ReduceL2
ReduceLogSum ReduceLogSumExp ReduceMax ReduceMean ReduceMin ReduceProd ReduceSum ReduceSumSquare Relu Reshape
Resize Round Selu Shape Sigmoid Sign Sin Sinh Size Slice Softmax Softplus Softsign Split Sqrt Squeeze Sub Sum Tan Tanh
ThresholdedRelu Tile TopK Transpose Trilu Unsqueeze Upsample Where Xor
""".split())

REDUCE_OPS = ("ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceMax", "ReduceMean", "ReduceMin",
              "ReduceProd", "ReduceSum", "ReduceSumSquare")


# input slots that decide output shapes (or that a kernel takes as a compile-time parameter, as Trilu's k):
# they must be constants, and the canonicalisers turn them into attributes
STATIC_INPUTS: dict[str, tuple[int, ...]] = {
    **{op: (1,) for op in REDUCE_OPS},
    "Reshape": (1,), "Expand": (1,), "Tile": (1,), "Squeeze": (1,), "Unsqueeze": (1,), "Split": (1,),
    "Slice": (1, 2, 3, 4), "Pad": (1, 2, 3), "ConstantOfShape": (0,), "Range": (0, 1, 2), "Trilu": (1,),
    "CumSum": (1,), "TopK": (1,), "Resize": (1, 2, 3), "Upsample": (1,),
}


@dataclass
class NodeIn:
    """One ONNX node on its way into the IR; canonicalisers edit `inputs` and `attrs` in place."""

    op: str
    name: str
    opset: int
    inputs: list[Value | None]
    attrs: dict[str, Any]
    n_outputs: int
    value_of: Callable[[Value], "np.ndarray | None"]        # the value if it is known before run time
    make_const: Callable[[str, np.ndarray], Value]

    def input(self, i: int) -> Value | None:
        return self.inputs[i] if i < len(self.inputs) else None

    def static(self, i: int, what: str) -> np.ndarray | None:
        """Input i as a constant (None when absent); an input only known at run time is an error."""
        v = self.input(i)
        if v is None:
            return None
        data = self.value_of(v)
        if data is None:
            raise SlmcError(f"ONNX {self.op} node '{self.name}' takes its {what} from run-time data, so its output "
                            "shape is not static",
                            "slmc compiles static shapes: export the model with that input constant")
        return data

    def ints(self, i: int, what: str) -> list[int] | None:
        data = self.static(i, what)
        if data is None:
            return None
        if np.asarray(data).dtype.kind not in "iu":  # (a float NaN here would crash int())
            raise SlmcError(f"ONNX {self.op} node '{self.name}': its {what} are {np.asarray(data).dtype} values, "
                            "not integers", "the model is malformed: export it again")
        return [int(x) for x in np.asarray(data).reshape(-1)]

    def keep(self, n: int) -> None:
        self.inputs = self.inputs[:n]


def _axes_input(n: NodeIn, since: int) -> None:
    if n.opset >= since:
        axes = n.ints(1, "axes")
        if axes is not None:
            n.attrs["axes"] = axes
        n.keep(1)


def _reduce(n: NodeIn) -> None:
    _axes_input(n, 13 if n.op == "ReduceSum" else 18)
    n.attrs.setdefault("keepdims", 1)


def _split(n: NodeIn) -> None:
    x = n.inputs[0]
    assert x is not None
    axis = n.attrs.get("axis", 0)
    if not isinstance(axis, int) or not -len(x.shape) <= axis < len(x.shape):
        # (ir/op_rules.py checks it too, but the sizes below are computed from it)
        raise SlmcError(f"Split node '{n.name}': axis {axis!r} is out of range for an input of rank {len(x.shape)}",
                        "the model is malformed: export it again")
    axis %= len(x.shape)
    n.attrs["axis"] = axis
    sizes = n.ints(1, "split sizes") if n.opset >= 13 else n.attrs.get("split")
    if not sizes:
        d = x.shape[axis]
        parts = n.attrs.pop("num_outputs", n.n_outputs)
        if not isinstance(parts, int) or parts < 1:
            raise SlmcError(f"Split node '{n.name}': num_outputs is {parts!r}, must be at least 1",
                            "the model is malformed: export it again")
        chunk = -(-d // parts)
        sizes = [chunk] * (parts - 1) + [d - chunk * (parts - 1)]
    n.attrs["split"] = [int(s) for s in sizes]
    n.attrs.pop("num_outputs", None)
    n.keep(1)


def _slice(n: NodeIn) -> None:
    if n.opset >= 10:
        n.attrs["starts"], n.attrs["ends"] = n.ints(1, "starts"), n.ints(2, "ends")
        n.attrs["axes"], n.attrs["steps"] = n.ints(3, "axes"), n.ints(4, "steps")
    n.attrs = {k: v for k, v in n.attrs.items() if v is not None}
    n.keep(1)


def _pad(n: NodeIn) -> None:
    x = n.inputs[0]
    assert x is not None
    if n.opset >= 11:
        n.attrs["pads"] = n.ints(1, "pads")
        value = n.static(2, "pad value")
        if value is not None and value.size:
            n.attrs["value"] = value.reshape(-1)[0].item()
        axes = n.ints(3, "axes")
        if axes is not None:
            n.attrs["axes"] = axes
    n.attrs.setdefault("value", 0.0)
    n.attrs.setdefault("mode", "constant")
    n.keep(1)


def _clip(n: NodeIn) -> None:
    if n.opset < 11:
        x = n.inputs[0]
        assert x is not None
        lo, hi = n.attrs.pop("min", None), n.attrs.pop("max", None)
        n.inputs = [x] + [None if b is None else n.make_const(f"{n.name}.{k}", np.array(b, dtype=x.dtype.np))
                          for k, b in (("min", lo), ("max", hi))]


def _softmax(n: NodeIn) -> None:
    if n.opset < 13:
        n.attrs.setdefault("axis", 1)
        n.attrs["legacy"] = 1
    else:
        n.attrs.setdefault("axis", -1)


def _reshape(n: NodeIn) -> None:
    n.attrs["shape"] = n.ints(1, "target shape")
    n.attrs.setdefault("allowzero", 0)
    n.keep(1)


def _static_attr(key: str, what: str, index: int = 1) -> Callable[[NodeIn], None]:
    def canon(n: NodeIn) -> None:
        vals = n.ints(index, what)
        if vals is not None and key in ("k", "axis") and len(vals) != 1:
            raise SlmcError(f"ONNX {n.op} node '{n.name}': its {what} holds {len(vals)} values, not one",
                            "the model is malformed: export it again")
        if vals is not None:
            n.attrs[key] = vals[0] if key in ("k", "axis") else vals
        n.keep(index)
    return canon


def _constant_of_shape(n: NodeIn) -> None:
    n.attrs["shape"] = n.ints(0, "shape")
    n.keep(0)


def _range(n: NodeIn) -> None:
    for i, what in enumerate(("start", "limit", "delta")):
        n.static(i, what)


def _flatten(n: NodeIn) -> None:
    n.attrs.setdefault("axis", 1)


def _global_pool(n: NodeIn) -> None:
    """GlobalAveragePool and GlobalMaxPool are ReduceMean and ReduceMax over the spatial axes, kept."""
    x = n.inputs[0]
    assert x is not None
    if len(x.shape) < 3:
        raise SlmcError(f"ONNX {n.op} node '{n.name}': input {list(x.shape)} has no spatial axis",
                        "the model is malformed: export it again")
    n.op = "ReduceMean" if n.op == "GlobalAveragePool" else "ReduceMax"
    n.attrs = {"axes": list(range(2, len(x.shape))), "keepdims": 1}


def _group_norm(n: NodeIn) -> None:
    """GroupNormalization-18's scale and bias are per group: made per channel (constants only), as -21 has them."""
    x = n.inputs[0]
    assert x is not None
    groups = n.attrs.get("num_groups")
    n.attrs.pop("stash_type", None)  # (the statistics are float32 in the C, float64 in the twin)
    if len(x.shape) < 2 or not isinstance(groups, int) or groups < 1 or x.shape[1] % groups:
        return  # (ir/op_rules_spatial.py names what is wrong)
    for i in (1, 2):
        v = n.input(i)
        if v is not None and v.shape == (groups,) and groups != x.shape[1]:
            data = n.static(i, "scale and bias (per group)")
            assert data is not None
            n.inputs[i] = n.make_const(f"{n.name}.per_channel{i}", np.repeat(data, x.shape[1] // groups))


def _resize(n: NodeIn) -> None:
    from slmc.frontend.onnx_resize import canonicalize  # (it reads NodeIn from here)

    canonicalize(n)


def _batch_norm(n: NodeIn) -> None:
    """Inference form: the attributes of older opsets that change nothing at inference dropped; spatial=0
    (opsets 7-8: statistics per element, not per channel) refused."""
    if n.attrs.pop("spatial", 1) != 1:
        raise SlmcError(f"ONNX BatchNormalization node '{n.name}' has spatial=0 (statistics per element): "
                        "not supported by the C kernels", "export the model with per-channel statistics")
    for key in ("momentum", "is_test", "consumed_inputs"):
        n.attrs.pop(key, None)


CANON: dict[str, Callable[[NodeIn], None]] = {
    **{op: _reduce for op in REDUCE_OPS},
    "Squeeze": lambda n: _axes_input(n, 13),
    "Unsqueeze": lambda n: _axes_input(n, 13),
    "Split": _split,
    "Slice": _slice,
    "Pad": _pad,
    "Clip": _clip,
    "Softmax": _softmax,
    "LogSoftmax": _softmax,
    "Reshape": _reshape,
    "Expand": _static_attr("shape", "target shape"),
    "Tile": _static_attr("repeats", "repeats"),
    "Trilu": _static_attr("k", "diagonal offset k"),
    "CumSum": _static_attr("axis", "axis"),
    "TopK": lambda n: _static_attr("k", "k")(n) if n.opset >= 10 else None,
    "ConstantOfShape": _constant_of_shape,
    "Range": _range,
    "Flatten": _flatten,
    "GlobalAveragePool": _global_pool,
    "GlobalMaxPool": _global_pool,
    "BatchNormalization": _batch_norm,
    "Resize": _resize,
    "Upsample": _resize,
    "GroupNormalization": _group_norm,
    "ConvInteger": lambda n: n.attrs.setdefault("kernel_shape", list(n.inputs[1].shape[2:])),  # type: ignore[union-attr]
}


def canonicalize(n: NodeIn) -> None:
    fn = CANON.get(n.op)
    if fn is not None:
        fn(n)
