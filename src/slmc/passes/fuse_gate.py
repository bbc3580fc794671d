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
q8 and int8 (only when `features`, the target's ISA features, are given):
- swiglu(a, linear_q8(xq, xs, wq, ws[, b])) -> linear_swiglu_q8(xq, xs, wq, ws, b or None, a) (u, a f32);
- swiglu_i(a, linear_i8(x, q, m), lut) with w3's out_bits 32 -> linear_swiglu_i8(x, q, m, a, lut), the
  attributes of both (they share no key);
- the same conditions on u, u has more than one row (a prompt step: in a decode step the arena's peak lies
  elsewhere, so the pair saves nothing there), and the fused node's kernel (kernels/ffn_pair.py) must wrap the
  very product and gate kernels the unfused nodes bind on that target (else the pair stays apart: host-native's).
Not in PIPELINE (that one is for ONNX imports): the driver runs it on language-model step graphs.
"""

from __future__ import annotations

from slmc.ir import DType, Graph, Node, Value
from slmc.ir.verify import verify


def _fusable(graph: Graph, sw: Node, features: frozenset[str] | None) -> Node | None:
    """The matrix product node producing the swiglu's u when the pair may be fused, else None."""
    if len(sw.inputs) != (3 if sw.op == "swiglu_i" else 2) or len(sw.outputs) != 1:
        return None
    a, u = sw.inputs[0], sw.inputs[1]
    if a is None or u is None or u.producer is None:
        return None
    lin = u.producer
    if len(u.users) != 1 or u.users[0] is not sw or any(v is u for v in graph.outputs) or len(lin.outputs) != 1:
        return None
    if sw.op == "swiglu":
        if lin.op == "linear":
            x, w = lin.inputs[0], lin.inputs[1] if len(lin.inputs) > 1 else None
            ok = ("layout" not in lin.attrs and len(lin.inputs) in (2, 3) and x is not None and w is not None
                  and all(v.dtype == DType.F32 for v in (x, w, u, a)) and a.type == u.type)
            return lin if ok else None
        ok = lin.op == "linear_q8" and len(lin.inputs) in (4, 5) and a.type == u.type and u.dtype == DType.F32
    else:
        ok = (lin.op == "linear_i8" and len(lin.inputs) == 3 and lin.attrs.get("out_bits") == 32
              and a.type == u.type and not set(lin.attrs) & set(sw.attrs))
    # a prompt step only (more than one row): in a decode step the pair saves nothing (the arena's peak lies
    # elsewhere), and the decode programs whose instructions are counted per operator stay as they were
    ok = ok and u.shape[0] > 1
    return lin if ok and features is not None and _same_kernels(_fused_node(lin, sw), lin, sw, features) else None


def _same_kernels(fused: Node, lin: Node, sw: Node, features: frozenset[str]) -> bool:
    """The fused node's kernel wraps the kernels the unfused product and gate bind (kernels/ffn_pair.py: the
    product's C file, then the gate's as the first of the files it calls into)."""
    from slmc.errors import SlmcError
    from slmc.kernels.registry import select

    try:
        spec, product = select(fused, features), select(lin, features)
        return spec.c_file == product.c_file and spec.deps[len(product.deps)] == select(sw, features).c_file
    except SlmcError:
        return False


def _fused_node(lin: Node, sw: Node) -> Node:
    a, out = sw.inputs[0], sw.outputs[0]
    if lin.op == "linear_q8":
        ins = [*lin.inputs[:4], lin.inputs[4] if len(lin.inputs) > 4 else None, a]
        op, attrs = "linear_swiglu_q8", dict(lin.attrs)
    elif lin.op == "linear_i8":
        ins, op, attrs = [*lin.inputs, a, sw.inputs[2]], "linear_swiglu_i8", {**lin.attrs, **sw.attrs}
    else:
        b: Value | None = lin.inputs[2] if len(lin.inputs) > 2 else None
        ins, op, attrs = [lin.inputs[0], lin.inputs[1], b, a], "linear_swiglu", dict(lin.attrs)
    # still the same decoder layer's node (plan/layers.py)
    return Node(op, ins, [out], attrs, name=sw.name, layer=sw.layer, role=sw.role)


def _fuse(graph: Graph, lin: Node, sw: Node) -> None:
    out = sw.outputs[0]
    fused = _fused_node(lin, sw)
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


def run(graph: Graph, features: frozenset[str] | None = None) -> Graph:
    """`features`: the target's ISA features; None fuses the fp32 pair only."""
    for sw in [n for n in graph.nodes if n.op in ("swiglu", "swiglu_i")]:
        lin = _fusable(graph, sw, features)
        if lin is not None:
            _fuse(graph, lin, sw)
    return verify(graph, after="the fuse_gate pass")
