"""Folding ONNX operators that slmc does not translate, where their inputs are known before run time.

Exporters compute masks and position ids with helpers that depend on the sequence length only
(transformers 5: a CumSum over a packed-sequence flag, GatherND into expanded position grids, ...). Once
the importer has bound every dimension, their inputs are constants, so such a node is evaluated once,
here, and its outputs become constants: only the operators left after folding must be ones slmc
translates (onnx_import.py). The evaluation is the onnx package's own reference evaluator
(onnx.reference.ReferenceEvaluator), so no operator gets a second definition written for slmc.

The model is untrusted: a node is evaluated only after onnx's shape inference has given every output a
static shape and a supported element type from the constant inputs, and the outputs are within
MAX_FOLDED_BYTES; random operators and nodes with subgraphs are not folded; the results must have the
inferred types; every failure is one SlmcError. With onnx_import.py and onnx_read.py, the only modules that
import onnx (DESIGN.md rule 1).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import onnx
from onnx import helper, numpy_helper

from slmc.errors import SlmcError
from slmc.frontend.onnx_read import dtype_of
from slmc.ir import DType
from slmc.ir.op_rules import quote

MAX_FOLDED_BYTES = 1 << 26  # 64 MiB in one folded constant: far above any mask an MCU model carries
RANDOM = frozenset("Bernoulli Multinomial RandomNormal RandomNormalLike RandomUniform RandomUniformLike".split())
_SUBGRAPH = (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)


def foldable(node: onnx.NodeProto, known: list[bool]) -> bool:
    """A standard, deterministic operator without subgraphs whose present inputs are all known."""
    return (node.domain in ("", "ai.onnx") and node.op_type not in RANDOM and onnx.defs.has(node.op_type)
            and all(known) and not any(a.type in _SUBGRAPH for a in node.attribute))


def fold(node: onnx.NodeProto, name: str, opset: int, inputs: list[np.ndarray | None]) -> list[np.ndarray | None]:
    """The outputs of `node` (None for an output it does not name) from its known inputs (None: absent)."""
    op = quote(node.op_type)[1:-1]
    where = f"ONNX {op} node {quote(name)}"
    ins = [f"in{k}" if v is not None else "" for k, v in enumerate(inputs)]
    outs = [f"out{k}" if o else "" for k, o in enumerate(node.output)]
    one = helper.make_node(node.op_type, ins, outs, domain=node.domain)
    one.attribute.extend(node.attribute)
    graph = helper.make_graph([one], "fold", [], [helper.make_empty_tensor_value_info(o) for o in outs if o],
                              [numpy_helper.from_array(np.asarray(v), k) for v, k in zip(inputs, ins) if v is not None])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True, data_prop=True)
    except Exception as e:  # onnx's InferenceError and its kin: the node is invalid for these inputs
        raise SlmcError(f"{where} has inputs known before run time, but onnx cannot infer its outputs from them "
                        f"({_first_line(e)})", "the model is malformed: export it again") from None
    want: dict[str, tuple[tuple[int, ...], DType]] = {}
    for vo in inferred.graph.output:
        t = vo.type.tensor_type
        dims = list(t.shape.dim) if vo.type.HasField("tensor_type") and t.HasField("shape") else None
        if dims is None or not all(d.HasField("dim_value") for d in dims):
            raise SlmcError(f"{where} has inputs known before run time, but its output size is not known before "
                            "it is evaluated, so slmc does not fold it",
                            "export the model without it (docs/ONNX_COVERAGE.md lists the operators slmc translates)")
        shape = tuple(int(d.dim_value) for d in dims)
        dt = dtype_of(t.elem_type, f"output {int(vo.name[3:])} of {where}")
        n = math.prod(shape) * dt.size
        if n > MAX_FOLDED_BYTES:
            raise SlmcError(f"folding {where} would make a constant of shape {list(shape)} ({n:,} bytes), above "
                            f"slmc's limit of {MAX_FOLDED_BYTES:,} bytes for a folded constant",
                            "export the model with smaller fixed shapes (a shorter sequence length)")
        want[vo.name] = (shape, dt)
    try:
        from onnx.reference import ReferenceEvaluator

        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            got = ReferenceEvaluator(model).run(None, {})
    except Exception as e:
        raise SlmcError(f"{where} cannot be folded: onnx's reference evaluator fails on it ({_first_line(e)})",
                        "check the model") from None
    res = dict(zip([o for o in outs if o], got))
    out: list[np.ndarray | None] = []
    for o in outs:
        if not o:
            out.append(None)
            continue
        arr, (shape, dt) = np.asarray(res[o]), want[o]
        if arr.shape != shape or arr.dtype != dt.np:
            raise SlmcError(f"folding {where}: onnx's reference evaluator gives {arr.dtype}{list(arr.shape)}, its "
                            f"shape inference {dt.np}{list(shape)}", "check the model") from None
        out.append(np.asarray(arr, order="C"))
    return out


def _first_line(e: Exception) -> str:
    text = " ".join(str(e).split())
    return f"{type(e).__name__}: {text[:120]}" if text else type(e).__name__
