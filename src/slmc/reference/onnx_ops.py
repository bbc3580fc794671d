"""numpy twins of the ONNX operators slmc accepts: elementwise math, reductions, matrix products and
normalisations (the data-movement operators are in onnx_tensor_ops.py).

The IR node is the importer's canonical form (frontend/onnx_import.py): inputs that decide shapes
(axes, pads, split sizes, ...) are attributes, whatever the opset. Floating-point math runs in float64
and is rounded once to the node's type, so a twin is as close to exact as the type allows: it is the
oracle the C kernels are checked against, and it is what constant folding computes with.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from slmc.ir.shapes import reduce_axes
from slmc.reference.registry import reference_op

Arr = np.ndarray
def n_outputs(a: dict[str, Any], default: int) -> int:
    """How many outputs the node has (optional trailing outputs cost work only when present)."""
    return len(a["_out_shapes"]) if "_out_shapes" in a else default


_erf = np.vectorize(math.erf, otypes=[np.float64])


def _float_math(fn: Callable[[Arr, dict[str, Any]], Arr]) -> Callable[[list[Any], dict[str, Any]], list[Arr]]:
    def twin(ins: list[Any], a: dict[str, Any]) -> list[Arr]:
        x = ins[0]
        if x.dtype.kind != "f":  # integer Neg/Abs/Sign/Relu: exact in their own type
            return [np.asarray(fn(x, a)).astype(x.dtype)]
        with np.errstate(all="ignore"):
            return [np.asarray(fn(x.astype(np.float64), a)).astype(x.dtype)]
    return twin


def _gelu(x: Arr, a: dict[str, Any]) -> Arr:
    if a.get("approximate", "none") == "tanh":
        return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)))
    return 0.5 * x * (1 + _erf(x / np.sqrt(2)))


UNARY: dict[str, Callable[[Arr, dict[str, Any]], Arr]] = {
    "Neg": lambda x, a: -x, "Abs": lambda x, a: np.abs(x), "Sign": lambda x, a: np.sign(x),
    "Relu": lambda x, a: np.maximum(x, 0),
    "Sqrt": lambda x, a: np.sqrt(x), "Reciprocal": lambda x, a: 1 / x, "Exp": lambda x, a: np.exp(x),
    "Log": lambda x, a: np.log(x), "Tanh": lambda x, a: np.tanh(x), "Erf": lambda x, a: _erf(x),
    "Sigmoid": lambda x, a: 1 / (1 + np.exp(-x)), "Cos": lambda x, a: np.cos(x), "Sin": lambda x, a: np.sin(x),
    "Tan": lambda x, a: np.tan(x), "Asin": lambda x, a: np.arcsin(x), "Acos": lambda x, a: np.arccos(x),
    "Atan": lambda x, a: np.arctan(x), "Sinh": lambda x, a: np.sinh(x), "Cosh": lambda x, a: np.cosh(x),
    "Asinh": lambda x, a: np.arcsinh(x), "Acosh": lambda x, a: np.arccosh(x), "Atanh": lambda x, a: np.arctanh(x),
    "Floor": lambda x, a: np.floor(x), "Ceil": lambda x, a: np.ceil(x),
    "Round": lambda x, a: np.round(x),  # half to even, as ONNX and C's nearbyintf
    "Softplus": lambda x, a: np.logaddexp(0, x), "Softsign": lambda x, a: x / (1 + np.abs(x)),
    "LeakyRelu": lambda x, a: np.where(x < 0, a.get("alpha", 0.01) * x, x),
    "Elu": lambda x, a: np.where(x < 0, a.get("alpha", 1.0) * (np.exp(x) - 1), x),
    "Selu": lambda x, a: a.get("gamma", 1.0507009873554805) * np.where(
        x <= 0, a.get("alpha", 1.6732632423543772) * (np.exp(x) - 1), x),
    "Celu": lambda x, a: np.maximum(x, 0) + np.minimum(0, a.get("alpha", 1.0) * (np.exp(x / a.get("alpha", 1.0)) - 1)),
    "ThresholdedRelu": lambda x, a: np.where(x > a.get("alpha", 1.0), x, 0),
    "HardSigmoid": lambda x, a: np.clip(a.get("alpha", 0.2) * x + a.get("beta", 0.5), 0, 1),
    "HardSwish": lambda x, a: x * np.clip(x / 6 + 0.5, 0, 1),
    "Mish": lambda x, a: x * np.tanh(np.logaddexp(0, x)),
    "Gelu": _gelu,
}
for _name, _fn in UNARY.items():
    reference_op(_name)(_float_math(_fn))


def _int_div(a: Arr, b: Arr) -> Arr:
    # C's truncation toward zero (ONNX leaves integer division to the platform; C is ours)
    q = np.abs(a) // np.where(b == 0, 1, np.abs(b))
    return np.where((a < 0) != (b < 0), -q, q)


def _mod(a: Arr, b: Arr, attrs: dict[str, Any]) -> Arr:
    if attrs.get("fmod", 0):
        return np.fmod(a, b)
    if a.dtype.kind == "f":
        return np.mod(a, b)
    return np.mod(a, np.where(b == 0, 1, b))


BINARY: dict[str, Callable[[Arr, Arr, dict[str, Any]], Arr]] = {
    "Add": lambda a, b, t: a + b, "Sub": lambda a, b, t: a - b, "Mul": lambda a, b, t: a * b,
    "Div": lambda a, b, t: a / b if a.dtype.kind == "f" else _int_div(a, b),
    "Pow": lambda a, b, t: np.power(a, b), "Max": lambda a, b, t: np.maximum(a, b),
    "Min": lambda a, b, t: np.minimum(a, b), "Mod": _mod,
    "PRelu": lambda a, b, t: np.where(a < 0, a * b, a),
}
COMPARE: dict[str, Callable[[Arr, Arr], Arr]] = {
    "Equal": np.equal, "Less": np.less, "Greater": np.greater, "LessOrEqual": np.less_equal,
    "GreaterOrEqual": np.greater_equal, "And": np.logical_and, "Or": np.logical_or, "Xor": np.logical_xor,
}


def _binary_twin(fn: Callable[[Arr, Arr, dict[str, Any]], Arr]) -> Callable[[list[Any], dict[str, Any]], list[Arr]]:
    def twin(ins: list[Any], a: dict[str, Any]) -> list[Arr]:
        x, y = ins
        if x.dtype.kind == "f":
            with np.errstate(all="ignore"):
                return [np.asarray(fn(x.astype(np.float64), y.astype(np.float64), a)).astype(x.dtype)]
        with np.errstate(all="ignore"):
            return [np.asarray(fn(x, y.astype(x.dtype), a)).astype(x.dtype)]
    return twin


for _name, _bfn in BINARY.items():
    reference_op(_name)(_binary_twin(_bfn))
for _name, _cfn in COMPARE.items():
    reference_op(_name)(lambda ins, a, f=_cfn: [np.asarray(f(ins[0], ins[1]))])


@reference_op("Not")
def not_(ins: list[Any], a: dict[str, Any]) -> list[Arr]:
    return [np.logical_not(ins[0])]


@reference_op("Clip")
def clip(ins: list[Any], a: dict[str, Any]) -> list[Arr]:
    x = ins[0]
    lo = ins[1] if len(ins) > 1 and ins[1] is not None else None
    hi = ins[2] if len(ins) > 2 and ins[2] is not None else None
    y = x if lo is None else np.maximum(x, lo)
    y = y if hi is None else np.minimum(y, hi)
    return [np.asarray(y).astype(x.dtype)]


# ---- reductions ----------------------------------------------------------------------------------

def _reducer(fn: Callable[[Arr, tuple[int, ...]], Arr]) -> Callable[[list[Any], dict[str, Any]], list[Arr]]:
    def twin(ins: list[Any], a: dict[str, Any]) -> list[Arr]:
        x = ins[0]
        axes = reduce_axes(x.ndim, a)
        if not axes:
            return [x.copy()]
        with np.errstate(all="ignore"):
            y = fn(x.astype(np.float64) if x.dtype.kind == "f" else x, axes)
        if a.get("keepdims", 1):
            y = np.expand_dims(y, axes)
        return [np.asarray(y).astype(x.dtype)]
    return twin


def _ext(x: Arr, axes: tuple[int, ...], fn: Any, empty: float) -> Arr:
    # the reduction of nothing is the identity element: -inf for Max, +inf for Min (the type's extremes)
    if x.dtype.kind == "f":
        return fn(x, axis=axes, initial=empty)
    if x.dtype == np.bool_:
        return fn(x, axis=axes, initial=empty > 0)
    info = np.iinfo(x.dtype)
    return fn(x, axis=axes, initial=info.max if empty > 0 else info.min)


REDUCE: dict[str, Callable[[Arr, tuple[int, ...]], Arr]] = {
    "ReduceSum": lambda x, ax: np.sum(x, axis=ax),
    "ReduceMean": lambda x, ax: np.sum(x, axis=ax) / max(1, math.prod(x.shape[i] for i in ax))
    if math.prod(x.shape[i] for i in ax) else np.full(np.sum(x, axis=ax).shape, np.nan),
    "ReduceMax": lambda x, ax: _ext(x, ax, np.max, -np.inf),
    "ReduceMin": lambda x, ax: _ext(x, ax, np.min, np.inf),
    "ReduceProd": lambda x, ax: np.prod(x, axis=ax),
    "ReduceSumSquare": lambda x, ax: np.sum(x * x, axis=ax),
    "ReduceL1": lambda x, ax: np.sum(np.abs(x), axis=ax),
    "ReduceL2": lambda x, ax: np.sqrt(np.sum(x * x, axis=ax)),
    "ReduceLogSum": lambda x, ax: np.log(np.sum(x, axis=ax)),
    "ReduceLogSumExp": lambda x, ax: np.log(np.sum(np.exp(x), axis=ax)),
}
for _name, _rfn in REDUCE.items():
    reference_op(_name)(_reducer(_rfn))


def _arg_reduce(fn: Callable[..., Arr], ins: list[Any], a: dict[str, Any]) -> list[Arr]:
    x = ins[0]
    axis = a.get("axis", 0) % x.ndim
    if a.get("select_last_index", 0):
        y = x.shape[axis] - 1 - fn(np.flip(x, axis), axis=axis)
    else:
        y = fn(x, axis=axis)
    if a.get("keepdims", 1):
        y = np.expand_dims(y, axis)
    return [np.asarray(y, dtype=np.int64)]


reference_op("ArgMax")(lambda ins, a: _arg_reduce(np.argmax, ins, a))
reference_op("ArgMin")(lambda ins, a: _arg_reduce(np.argmin, ins, a))


def _softmax(log: bool, ins: list[Any], a: dict[str, Any]) -> list[Arr]:
    x = ins[0]
    axis = a.get("axis", -1) % max(x.ndim, 1)
    # opset < 13: the input is coerced to 2-D at `axis` and normalised over everything after it
    v = x.reshape(math.prod(x.shape[:axis]), -1) if a.get("legacy") else x
    ax = 1 if a.get("legacy") else axis
    v = v.astype(np.float64)
    with np.errstate(all="ignore"):  # a row of -inf gives NaN, as in onnxruntime and the C
        e = v - np.max(v, axis=ax, keepdims=True)
        if log:
            y = e - np.log(np.sum(np.exp(e), axis=ax, keepdims=True))
        else:
            y = np.exp(e) / np.sum(np.exp(e), axis=ax, keepdims=True)
    return [y.reshape(x.shape).astype(x.dtype)]


reference_op("Softmax")(lambda ins, a: _softmax(False, ins, a))
reference_op("LogSoftmax")(lambda ins, a: _softmax(True, ins, a))


# ---- matrix products and normalisation ------------------------------------------------------------

@reference_op("MatMul")
def matmul(ins: list[Any], a: dict[str, Any]) -> list[Arr]:
    x, y = ins
    return [np.matmul(x.astype(np.float64), y.astype(np.float64)).astype(x.dtype)]


@reference_op("Gemm")
def gemm(ins: list[Any], a: dict[str, Any]) -> list[Arr]:
    x, y = ins[0].astype(np.float64), ins[1].astype(np.float64)
    x = x.T if a.get("transA", 0) else x
    y = y.T if a.get("transB", 0) else y
    out = a.get("alpha", 1.0) * (x @ y)
    if len(ins) > 2 and ins[2] is not None:
        out = out + a.get("beta", 1.0) * ins[2].astype(np.float64)
    return [out.astype(ins[0].dtype)]


@reference_op("LayerNormalization")
def layer_normalization(ins: list[Any], a: dict[str, Any]) -> list[Arr]:
    x, w = ins[0], ins[1]
    b = ins[2] if len(ins) > 2 else None
    axis = a.get("axis", -1) % x.ndim
    red = tuple(range(axis, x.ndim))
    v = x.astype(np.float64)
    mean = v.mean(axis=red, keepdims=True)
    inv = 1 / np.sqrt(((v - mean) ** 2).mean(axis=red, keepdims=True) + a.get("epsilon", 1e-5))
    y = (v - mean) * inv * w
    if b is not None:
        y = y + b
    return [y.astype(x.dtype), mean.astype(np.float32), inv.astype(np.float32)][:n_outputs(a, 3)]
