"""Remove nodes that compute nothing.

Rules (the node's output is replaced by its input everywhere it is read):
- Identity, and Dropout at inference;
- Cast to the type the input already has;
- Reshape, Squeeze, Unsqueeze, Flatten, Expand, Tile, Slice, Pad or Transpose whose output equals its
  input: same shape and, for Transpose, the identity permutation; for Slice, every step 1 and the
  whole input; for Pad, no padding;
- Concat of a single input.
A node whose output is a graph output stays (the caller's buffer needs the copy codegen emits for it).
"""

from __future__ import annotations

from slmc.ir import Graph, Node, Value
from slmc.ir.shapes import slice_params

_SAME_SHAPE = frozenset({"Reshape", "Squeeze", "Unsqueeze", "Flatten", "Expand", "Tile"})


def _passthrough(node: Node) -> Value | None:
    x = node.inputs[0] if node.inputs else None
    if x is None or len(node.outputs) != 1:
        return None
    y = node.outputs[0]
    if y.type != x.type or any(v is not None for v in node.inputs[1:]) and node.op not in ("Dropout", "Concat"):
        return None
    op = node.op
    if op in ("Identity", "Dropout", "Cast") or op in _SAME_SHAPE:
        return x
    if op == "Transpose":
        perm = node.attrs.get("perm") or list(reversed(range(len(x.shape))))
        return x if list(perm) == sorted(perm) else None
    if op == "Slice":
        ps = slice_params(x.shape, node.attrs)
        return x if all(p == (0, 1, d) for p, d in zip(ps, x.shape)) else None
    if op == "Pad":
        return x if not any(node.attrs.get("pads", [])) else None
    if op == "Concat":
        return x if len(node.inputs) == 1 else None
    return None


def run(graph: Graph) -> Graph:
    outputs = {id(v) for v in graph.outputs}
    for node in list(graph.nodes):
        x = _passthrough(node)
        if x is None or id(node.outputs[0]) in outputs:
            continue
        graph.replace_uses(node.outputs[0], x)
        graph.remove_node(node)
    return graph
