"""Row-streamed q8 products in a prompt step (issue 21): the rewrites that let a memory-sharing plan of a q8
prompt step go below what whole intermediate tensors allow (kernels/ffn_pair.py has the kernels and says why
they are bit-identical to the operators they replace).

Rules, on a graph with more than one token row, for `features` (the target's ISA features), after
passes/fuse_gate.py:
- quantize_q8(x) -> (xq, xs) whose two outputs only one linear_q8 node P reads, as its inputs 0 and 1, neither a
  graph output: both become one `quantize_linear_q8(x, wq, ws[, b])` node with P's output, attributes and name,
  at P's place (x is defined before the quantizer, so before P). xq and xs leave the graph's values. In a
  decoder: wo (reads the attention output's quantizer), w2 (the FFN activation's), the classifier; not wq, wk,
  wv (one quantizer for three) nor w1 and w3.
- the linear_q8 node computing the gate of a `linear_swiglu_q8` node (w1) becomes `linear_q8_by_row`, same
  inputs, output and attributes: its kernel widens one row into scratch at a time.
- each only where the new node's kernel wraps the very kernels the old nodes bind (the product's, the
  quantizer's; kernels/ffn_pair.py: host-native's kernels are not bit-identical row by row).
Not in PIPELINE: the driver runs it on language-model step graphs with memory sharing on, as fuse_gate.
"""

from __future__ import annotations

from slmc.errors import SlmcError
from slmc.ir import Graph, Node
from slmc.ir.verify import verify
from slmc.kernels.registry import select


def _kernel(n: Node, features: frozenset[str]) -> str | None:
    try:
        return select(n, features).c_file
    except SlmcError:
        return None


def _replace(graph: Graph, old: Node, new: Node) -> None:
    """`new` at `old`'s place: the def-use links of both brought up to date."""
    for v in old.inputs:
        if v is not None and old in v.users:
            v.users.remove(old)
    graph.nodes[graph.nodes.index(old)] = new
    for v in new.inputs:
        if v is not None:
            v.users.append(new)
    for o in new.outputs:
        o.producer = new


def _quantize_first(graph: Graph, q: Node, features: frozenset[str]) -> None:
    xq, xs = q.outputs
    if len(xq.users) != 1 or xs.users != xq.users or any(v is xq or v is xs for v in graph.outputs):
        return
    p = xq.users[0]
    if p.op != "linear_q8" or p.inputs[0] is not xq or p.inputs[1] is not xs:
        return
    if q.attrs.get("group") != p.attrs["group"]:
        return
    new = Node("quantize_linear_q8", [q.inputs[0], *p.inputs[2:]], list(p.outputs), dict(p.attrs), name=p.name,
               layer=p.layer, role=p.role)
    try:   # the product's kernel, and the quantizer's as the first of its files it calls into
        spec, old = select(new, features), select(p, features)
        if spec.c_file != old.c_file or spec.deps[len(old.deps)] != select(q, features).c_file:
            return
    except SlmcError:
        return
    _replace(graph, p, new)
    graph.remove_node(q)   # unlinks it from x and drops xq and xs from the graph's values


def run(graph: Graph, features: frozenset[str]) -> Graph:
    for q in [n for n in graph.nodes if n.op == "quantize_q8"]:
        if q.outputs[0].shape[0] > 1:
            _quantize_first(graph, q, features)
    for pair in [n for n in graph.nodes if n.op == "linear_swiglu_q8"]:
        gate = pair.inputs[5]
        g = gate.producer if gate is not None else None
        if g is None or g.op != "linear_q8" or gate.shape[0] < 2:  # type: ignore[union-attr]
            continue
        new = Node("linear_q8_by_row", list(g.inputs), list(g.outputs), dict(g.attrs), name=g.name, layer=g.layer,
                   role=g.role)
        if _kernel(new, features) == _kernel(g, features):
            _replace(graph, g, new)
    return verify(graph, after="the stream_rows pass")
