"""Constant folding with the numpy twins (the same definition of each operator that checks the C).

Rules:
- a node whose inputs are all constants is evaluated; its outputs become constants;
- Shape and Size are evaluated whatever their input holds: shapes are static;
- a graph output that becomes a constant stays a graph output (codegen copies it to the caller).
Shape arithmetic (Shape, Gather on shapes, Concat, Range, ConstantOfShape, Equal, Where, Expand, Cast)
disappears this way, and so do position tables such as RoPE's cos/sin. Folded results are not size
limited: an Expand of a constant to a large shape becomes a large constant in weights.bin.
"""

from __future__ import annotations

import numpy as np

from slmc.errors import SlmcError
from slmc.ir import Graph, Node, ValueKind
from slmc.reference.registry import REFERENCE

SHAPE_ONLY = frozenset({"Shape", "Size"})


def foldable(node: Node) -> bool:
    if node.op not in REFERENCE or node.attrs.get("side_effect") or not node.outputs:
        return False
    if node.op in SHAPE_ONLY:
        return True
    return all(v is None or v.kind == ValueKind.CONST for v in node.inputs)


def evaluate(node: Node) -> list[np.ndarray]:
    """The node's outputs from its constant inputs (zeros stand in for data a shape-only op ignores)."""
    ins = [None if v is None else (v.data if v.kind == ValueKind.CONST else np.zeros(v.shape, v.dtype.np))
           for v in node.inputs]
    with np.errstate(all="ignore"):
        outs = REFERENCE[node.op](ins, dict(node.attrs, _out_shapes=[o.shape for o in node.outputs]))
    res = []
    for v, arr in zip(node.outputs, outs):
        arr = np.asarray(arr)
        if tuple(arr.shape) != v.shape:
            raise SlmcError(f"folding {node.op} node '{node.name}' gave shape {arr.shape}, the graph says {v.shape}",
                            "this is a bug in slmc")
        res.append(np.asarray(arr.astype(v.dtype.np), order="C"))
    return res


def run(graph: Graph) -> Graph:
    for node in list(graph.nodes):
        if not foldable(node):
            continue
        arrays = evaluate(node)
        graph.remove_node(node)
        for old, arr in zip(node.outputs, arrays):
            graph.replace_uses(old, graph.add_const(old.name, arr))
    return graph
