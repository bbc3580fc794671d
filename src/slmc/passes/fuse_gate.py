"""Fuse the FFN's up projection with its SwiGLU gate: swiglu(a, linear(x, w, b)) -> linear_swiglu(x, w, b, a).

The up projection's output u then never exists as a tensor (kernels/c/linear_swiglu_f32.c computes
silu(a) * u in the matrix product's epilogue, bit-identical to linear_f32 followed by swiglu_f32).

Rules, for each `swiglu` node with inputs [a, u]:
- u is produced by a `linear` node on f32 data (x, w, u and a all f32) whose attrs have no "layout";
- u has exactly one consumer, this swiglu (so also u is not the gate a), and u is not a graph output;
- then both nodes become one `linear_swiglu` node with inputs [x, w, b or None, a], the swiglu's output
  value and the swiglu's name (e.g. "layers.0.ffn_act"), at the swiglu's place in the node list: a and x
  are both read by nodes at or before that place, so they are defined before it and the order stays
  topological. u leaves the graph's values.
Not in PIPELINE (that one is for ONNX imports): the driver runs it on language-model step graphs.
"""

from __future__ import annotations

from slmc.ir import DType, Graph, Node, Value
from slmc.ir.verify import verify


def _fusable(graph: Graph, sw: Node) -> Node | None:
    """The `linear` node producing the swiglu's u when the pair may be fused, else None."""
    if len(sw.inputs) != 2 or len(sw.outputs) != 1:
        return None
    a, u = sw.inputs
    if a is None or u is None or u.producer is None:
        return None
    lin = u.producer
    if lin.op != "linear" or "layout" in lin.attrs or len(lin.outputs) != 1 or len(lin.inputs) not in (2, 3):
        return None
    x, w = lin.inputs[0], lin.inputs[1]
    if x is None or w is None or any(v.dtype != DType.F32 for v in (x, w, u, a)) or a.type != u.type:
        return None
    if len(u.users) != 1 or u.users[0] is not sw or any(v is u for v in graph.outputs):
        return None
    return lin


def _fuse(graph: Graph, lin: Node, sw: Node) -> None:
    a, out = sw.inputs[0], sw.outputs[0]
    assert a is not None
    b: Value | None = lin.inputs[2] if len(lin.inputs) > 2 else None
    fused = Node("linear_swiglu", [lin.inputs[0], lin.inputs[1], b, a], [out], dict(lin.attrs), name=sw.name,
                 layer=sw.layer, role=sw.role)  # still the same decoder layer's node (plan/layers.py)
    # the swiglu node goes by hand: Graph.remove_node would also drop its output, which the fused node keeps
    for v in sw.inputs:
        if v is not None and sw in v.users:
            v.users.remove(sw)
    graph.nodes[graph.nodes.index(sw)] = fused
    out.producer = fused
    for v in fused.inputs:
        if v is not None:
            v.users.append(fused)
    graph.remove_node(lin)  # unlinks it from x, w, b and drops u from the graph's values


def run(graph: Graph) -> Graph:
    for sw in [n for n in graph.nodes if n.op == "swiglu"]:
        lin = _fusable(graph, sw)
        if lin is not None:
            _fuse(graph, lin, sw)
    return verify(graph, after="the fuse_gate pass")
