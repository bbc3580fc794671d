"""Deeploy's integer networks (../shared/conformance/deeploy/README.md): their custom operators, and
the pass that turns a graph of integer values stored as float32 into one of C integer types.

Recognition. RequantShift, iSoftmax, ITAMax, ITAPartialMax, iRMSNorm, iLayerNorm, iGELU, iHardswish,
TrueIntegerDiv, IntegerDiv, IntegerMean and iNoNorm, and the float RMSNorm, are read like ONNX operators
in the default domain and in the quantization tools' domains of DOMAIN_ALIASES (QuantLib's PACT exporter
writes `PACTOps::RequantShift`, the operator Deeploy's files carry in the default domain), as is
com.microsoft's Gelu (the erf form: ONNX's own Gelu); any other operator of those domains is refused by
name. Their attributes (often 1-element tensors) become plain ints, a power-of-two divisor (div, D) a
`shift`. ONNX's Conv and MaxPool run on integer data too in an integer network (C kernels of their own).

Integer graphs. A graph that holds one of the integer operators (or whose file declares an integer
result of float arithmetic, as Deeploy's Add/Large does, or whose sample inputs are integer arrays and
constants all integers, as in Deeploy's GEMM/Regular) is integer throughout: every value in it is an
integer, whatever its ONNX type says. `integerize` walks it once in order and proves a value
range [lo, hi] for every tensor (interval arithmetic, rules in onnx_deeploy_ranges.py), then stores it
in the smallest C type that holds that range; sums and products get int32, or int64 where the bound
needs it, and a value whose bound leaves int64 is an error. Where the proof starts:
- a constant: its values (they must be integers);
- a graph input: the sample inputs beside the model (`inputs.npz`, bound in order as `slmc run` binds
  them) when they are there: this is Deeploy's own convention (its test runner types a network's
  inputs from the test vectors); the input's C type is the smallest integer type holding the sample,
  and the proof uses that type's whole range, so any input the compiled program accepts is covered
  (`slmc run` refuses values outside it). Without a sample, an input declared as an integer type gets
  that type; a float32 input has no provable range and the import fails naming it.
Every other graph keeps ONNX semantics in its declared types.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from slmc.errors import SlmcError
from slmc.ir import DType, Graph, TensorType, Value

INT_OPS = frozenset("""RequantShift iSoftmax ITAMax ITAPartialMax iRMSNorm iLayerNorm iGELU iHardswish TrueIntegerDiv
IntegerDiv IntegerMean iNoNorm""".split())
FLOAT_OPS = frozenset({"RMSNorm"})
# domains of quantization tools and onnxruntime whose operators of these names are slmc's default-domain ones
DOMAIN_ALIASES: dict[str, frozenset[str]] = {
    "": INT_OPS | FLOAT_OPS, "ai.onnx": INT_OPS | FLOAT_OPS,
    "ai.onnx.contrib": INT_OPS | FLOAT_OPS,   # onnxruntime-extensions' custom domain (Deeploy's GEMM/Batch_RQ)
    "PACTOps": INT_OPS | FLOAT_OPS,           # QuantLib's PACT exporter (pact_ops.py: g.op("PACTOps::RequantShift"))
    "com.microsoft": frozenset({"Gelu"}),     # onnxruntime's contrib Gelu: the erf form, ONNX's own Gelu
}
INT_TYPES = (DType.I8, DType.U8, DType.I16, DType.I32, DType.I64)
SAMPLE = "inputs.npz"

# required attributes per operator (the others have defaults below)
_NEEDS: dict[str, tuple[str, ...]] = {
    "RequantShift": ("div", "signed"), "iSoftmax": ("coeffA", "coeffB", "coeffC", "log2", "n_levels"),
    "ITAMax": ("n_levels",), "ITAPartialMax": ("n_levels", "group_width"), "iRMSNorm": ("D", "n_levels"),
    "iLayerNorm": ("D", "n_levels"), "iGELU": ("b", "one"), "iHardswish": ("one_over_six", "three", "six"),
    "TrueIntegerDiv": ("Delta", "eta", "eps", "y"), "iNoNorm": ("D", "mul"), "IntegerDiv": ("Delta", "eta", "eps"),
    "IntegerMean": (), "RMSNorm": (),
}


def op_name(domain: str, op: str) -> str | None:
    """The IR op of a Deeploy (or other tool's custom-domain) node, None for anything else."""
    return op if op in DOMAIN_ALIASES.get(domain, ()) else None


def _int(v: Any, what: str) -> int:
    arr = np.asarray(v, dtype=np.float64).reshape(-1)
    if arr.size != 1 or not np.isfinite(arr[0]) or arr[0] != np.rint(arr[0]):
        raise SlmcError(f"{what} is {np.asarray(v).tolist()}, not one integer", "export the attribute as an integer")
    return int(arr[0])


def _shift(v: int, what: str) -> int:
    if v <= 0 or v & (v - 1):
        raise SlmcError(f"{what} is {v}, not a power of two", "Deeploy's kernels divide by shifting: use 2^s")
    return v.bit_length() - 1


def normalise(op: str, attrs: dict[str, Any], node: str) -> dict[str, Any]:
    """Canonical attributes: ints (a `shift` for div/D), `n_levels` whatever it was called."""
    if op == "Gelu":
        return {}
    if op == "RMSNorm":
        return {"eps": float(np.asarray(attrs.get("eps", 1e-5)).reshape(-1)[0])}
    a = dict(attrs)
    if "n_levels_out" in a:
        a["n_levels"] = a.pop("n_levels_out")
    if op == "RequantShift":
        a.setdefault("n_levels", 256)
    missing = [k for k in _NEEDS[op] if k not in a]
    if missing:
        raise SlmcError(f"{op} node '{node}' has no attribute '{missing[0]}'",
                        "export the node with all its attributes")
    out: dict[str, Any] = {}
    for k, v in a.items():
        if op == "IntegerMean" and k == "axes":
            out[k] = [_int(x, f"axis of {op} node '{node}'") for x in np.asarray(v).reshape(-1)]
        else:
            out[k] = _int(v, f"attribute '{k}' of {op} node '{node}'")
    for key in ("div", "D"):
        if key in out:
            out["shift"] = _shift(out.pop(key), f"attribute '{key}' of {op} node '{node}'")
    if op == "iNoNorm" and "n_levels" in out:
        out.pop("n_levels")
    if op == "ITAPartialMax" and out["group_width"] <= 0:
        raise SlmcError(f"ITAPartialMax node '{node}' has group_width {out['group_width']}", "use a positive width")
    return out


def is_integer(graph: Graph, model_path: Path | None = None) -> bool:
    """An integer network (module docstring): it has an integer operator; or its file declares the integer
    result of float arithmetic (Deeploy's Add/Large: two float32 inputs, an int32 sum); or its sample
    inputs are integer arrays for inputs it declares float, and every constant in it is an integer, with no
    operator that only makes sense on floats (Deeploy's GEMM/Regular: float32 declarations, int8 test
    vectors)."""
    from slmc.frontend.onnx_deeploy_ranges import RULES

    if any(n.op in INT_OPS or n.op in ("Add", "Sub", "Mul", "MatMul", "Gemm") and n.inputs[0] is not None
           and n.inputs[0].dtype.is_float and not n.outputs[0].dtype.is_float for n in graph.nodes):
        return True
    samples = sample_feeds(model_path)
    if not samples or not any(v.dtype.is_float for v in graph.inputs) or not all(n.op in RULES for n in graph.nodes):
        return False  # (declared integer inputs keep ONNX's own integer semantics)
    feeds = [bind_feed(samples, i, v.name) for i, v in enumerate(graph.inputs)]
    if not all(f is not None and np.asarray(f).dtype.kind in "iu" for f in feeds):
        return False
    return all(_whole(np.asarray(c.data)) for c in graph.consts())


def _whole(data: np.ndarray) -> bool:
    if data.dtype.kind in "iu":
        return True
    return data.dtype.kind == "f" and bool(np.all(np.isfinite(data) & (data == np.rint(data))))


# ---- where the proof starts ---------------------------------------------------------------------------

def storage_type(lo: int, hi: int) -> DType | None:
    """The smallest integer type that holds [lo, hi]."""
    return next((d for d in INT_TYPES if np.iinfo(d.np).min <= lo and hi <= np.iinfo(d.np).max), None)


def type_range(d: DType) -> tuple[int, int]:
    info = np.iinfo(d.np)
    return int(info.min), int(info.max)


def integer_values(arr: np.ndarray, what: str, fix: str) -> np.ndarray:
    """arr as int64; an error naming `what` when a value is not an integer."""
    a = np.asarray(arr)
    if a.dtype.kind in "iub":
        return a.astype(np.int64)
    f = a.astype(np.float64)
    if not np.all(np.isfinite(f)) or np.any(f != np.rint(f)) or np.any(np.abs(f) >= 2.0 ** 63):
        raise SlmcError(f"{what} holds values that are not integers", fix)
    return f.astype(np.int64)


def sample_feeds(path: Path | None) -> dict[str, np.ndarray] | None:
    """The arrays of the `inputs.npz` beside the model, in file order (None when there is none)."""
    if path is None or not (Path(path).parent / SAMPLE).is_file():
        return None
    with np.load(Path(path).parent / SAMPLE) as f:
        return {k: f[k] for k in f.files}


def bind_feed(feeds: dict[str, np.ndarray], i: int, name: str) -> np.ndarray | None:
    """Graph input i: `input_i`, else its name, else the i-th array in file order (Deeploy's npz files name
    them arr_0, _0, ...)."""
    for key in (f"input_{i}", name):
        if key in feeds:
            return feeds[key]
    keys = list(feeds)
    return feeds[keys[i]] if i < len(keys) else None


def input_type(v: Value, sample: np.ndarray | None) -> DType:
    if sample is not None:
        vals = integer_values(sample, f"the sample value of graph input '{v.name}' ({SAMPLE})",
                              "an integer network takes integer inputs")
        d = storage_type(int(vals.min()), int(vals.max())) if vals.size else DType.I8
        if d is None or d == DType.I64:
            raise SlmcError(f"the sample of graph input '{v.name}' exceeds int32", "integer inputs must fit int32")
        return d
    if not v.dtype.is_float and v.dtype not in (DType.BOOL, DType.U64):
        return v.dtype
    raise SlmcError(f"graph input '{v.name}' is declared {v.dtype.short} in an integer network, so slmc cannot "
                    "prove its value range",
                    f"declare it as an integer type (int8, int16, ...) in the ONNX file, or put sample inputs "
                    f"({SAMPLE}: input_0, ...) beside the model")


def integerize(graph: Graph, model_path: Path | None = None) -> Graph:
    """Every value of an integer graph retyped to a proven C integer type (see the module docstring)."""
    from slmc.frontend.onnx_deeploy_ranges import Ranges

    samples = sample_feeds(model_path)
    r = Ranges(graph)  # constants get their range (and integer type) when a rule first reads them
    for i, v in enumerate(graph.inputs):
        d = input_type(v, bind_feed(samples, i, v.name) if samples is not None else None)
        v.type = TensorType(v.shape, d)
        r.set(v, type_range(d))
    r.run()
    return graph


def retype(v: Value, d: DType) -> None:
    v.type = TensorType(v.shape, d)
