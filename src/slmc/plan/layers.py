"""The repeated layers of a decoder step graph, and the planner's time axis with them folded into one.

The graph builders stamp each node with its decoder layer (Node.layer). `find_layers` checks that the
layers are copies of one another that one loop body can run, as llama2.c's forward() runs them:

- each layer is one run of `size` consecutive nodes, layer i + 1 right after layer i;
- node k of layer i has node k of layer 0's operator, attributes (integers may differ) and output types;
- each input of it is, in every layer: the same value (a graph input, a constant every layer reads such as
  RoPE's tables, an activation computed before the layers), the layer's own value at the same position,
  a constant or state of the same type (the layer's weights and KV cache: model.c's per-layer table), or,
  where layer 0 reads an activation from before the layers, what the previous layer handed on at one fixed
  position (a `Carry`: the residual stream);
- nothing outside a layer reads its values, except the next layer (or, after the last layer, the nodes
  after the layers) reading what it hands on; layer 0 reads the carried value for the last time before
  the node that writes the next one (they share one buffer in the loop).

Anything else returns the reason as a string, and that graph is planned and written out layer by layer.

`Fold` is the time axis the memory planner sees (plan/plan.py): each foldable graph as the nodes before
the layers, layer 0, and the nodes after. Layers 1 .. N-1 are not on it: each of their buffers is its
counterpart's in layer 0, so every layer gets layer 0's offsets by construction, not by luck. A carried
value is two buffers tied to one offset (memory.py's ties): what layer 0 reads (live from before the
layers to its last read) and what each layer hands on (live from its write to the end of the layer, and
after the last layer to its last reader). A value from before the layers that every layer reads stays live
to the end of layer 0 (the next pass reads it again). `Fold.unfold_names` maps each real buffer to the
folded one whose offset it takes; `real_ties` are the pairs the checker verifies on the real time axis.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from slmc.ir import Graph, Node, Value, ValueKind
from slmc.plan.lifetimes import Buffer, buffer_name, scratch_name, storage_root


@dataclass(frozen=True)
class Carry:
    into: Value              # what layer 0 reads from before the layers (the residual stream)
    at: tuple[int, int]      # (node within a layer, output) of what each layer hands on to the next


@dataclass(frozen=True)
class Layers:
    graph: Graph
    start: int               # graph.nodes index of layer 0's first node
    size: int                # nodes per layer
    count: int
    carries: tuple[Carry, ...]
    invariants: tuple[Value, ...]   # activations from before the layers that every layer reads
    where: dict[int, tuple[int, int, int]] = field(repr=False, compare=False)  # id(value) -> (layer, node, output)

    @property
    def end(self) -> int:
        return self.start + self.size * self.count

    def node(self, i: int, k: int) -> Node:
        return self.graph.nodes[self.start + i * self.size + k]

    def handed(self, i: int, c: Carry) -> Value:
        """What layer i hands on for carry c."""
        return self.node(i, c.at[0]).outputs[c.at[1]]

    def counterpart(self, v: Value) -> Value:
        """Layer 0's value at the position of `v` (a value some layer computes); a carried value: what layer 0 reads."""
        i, k, o = self.where[id(v)]
        for c in self.carries:
            if c.at == (k, o):
                return c.into
        return self.node(0, k).outputs[o]


def find_layers(g: Graph) -> Layers | str:
    """The graph's repeated layers, or why there are none a loop can run."""
    marks = [n.layer for n in g.nodes]
    idx = [i for i, m in enumerate(marks) if m is not None]
    if not idx:
        return "its nodes carry no layer marks"
    count = max(m for m in marks if m is not None) + 1
    start, size = idx[0], len(idx) // count
    if count < 2:
        return "it has one layer"
    if size * count != len(idx) or any(marks[start + i] != i // size for i in range(size * count)):
        return "its layers are not runs of the same number of consecutive nodes"
    where = {id(o): (i, k, j) for i in range(count) for k in range(size)
             for j, o in enumerate(g.nodes[start + i * size + k].outputs)}
    lay = Layers(g, start, size, count, (), (), where)
    carries: dict[int, Carry] = {}
    invariants: dict[int, Value] = {}
    for i in range(1, count):
        for k in range(size):
            a, b = lay.node(0, k), lay.node(i, k)
            if (a.op != b.op or len(a.inputs) != len(b.inputs) or [o.type for o in a.outputs] != [o.type for o in b.outputs]
                    or not _same_attrs(a.attrs, b.attrs)):
                return f"node {b.name!r} of layer {i} is not node {a.name!r} of layer 0"
            for va, vb in zip(a.inputs, b.inputs):
                why = _slot(lay, i, va, vb, carries, invariants)
                if why:
                    return f"node {b.name!r} of layer {i}: {why}"
    lay = Layers(g, start, size, count, tuple(carries.values()), tuple(invariants.values()), where)
    return _readers_ok(lay) or lay


def _same_attrs(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Equal attributes, but for integers that may differ (an int8 layer's calibrated shifts: model.c's loop
    reads them from the layer table where the kernel's call writes them through CallContext.attr)."""
    if a.keys() != b.keys():
        return False
    for key in a:
        x, y = a[key], b[key]
        if isinstance(x, np.ndarray) or isinstance(y, np.ndarray):
            if not np.array_equal(x, y):
                return False
        elif type(x) is not type(y) or (x != y and not is_int(x)):
            return False
    return True


def is_int(x: object) -> bool:
    return isinstance(x, (int, np.integer)) and not isinstance(x, (bool, np.bool_))


def _slot(lay: Layers, i: int, va: Value | None, vb: Value | None, carries: dict[int, Carry],
          invariants: dict[int, Value]) -> str:
    """Why input va of a layer-0 node and input vb of the same node of layer i cannot be one loop's (or "")."""
    if va is None or vb is None:
        return "" if va is vb else "an input is missing in one layer only"
    if id(va) in lay.where:  # layer 0's own value: layer i's at the same position
        _, k, o = lay.where[id(va)]
        return "" if lay.where.get(id(vb)) == (i, k, o) else f"it reads {vb.name!r} where layer 0 reads {va.name!r}"
    if va.kind in (ValueKind.CONST, ValueKind.STATE):  # the layer's own weights and cache: the per-layer table
        return "" if vb.kind == va.kind and vb.type == va.type else f"{vb.name!r} is not of the kind of {va.name!r}"
    if vb is va:
        if va.kind == ValueKind.TEMP:
            invariants[id(va)] = va
        return ""
    w = lay.where.get(id(vb))
    if va.kind != ValueKind.TEMP or w is None or w[0] != i - 1 or vb.type != va.type:
        return f"it reads {vb.name!r} where layer 0 reads {va.name!r}"
    c = carries.setdefault(id(va), Carry(va, (w[1], w[2])))
    return "" if c.at == (w[1], w[2]) else f"layers hand on {va.name!r} from different nodes"


def _readers_ok(lay: Layers) -> str:
    """Why the layers' values are read where a loop could not provide them (or "")."""
    g = lay.graph
    handed = {c.at for c in lay.carries}
    intos = {id(c.into) for c in lay.carries}
    if intos & {id(v) for v in lay.invariants}:
        return "a layer reads the value layer 0 reads, not the one the layer before handed on"
    outs = {id(v) for v in g.outputs}
    for c in lay.carries:
        hv = lay.handed(0, c)
        if (storage_root(c.into) is not c.into or storage_root(hv) is not hv or id(c.into) in outs
                or c.into.kind != ValueKind.TEMP):
            return f"{c.into.name!r} is handed from layer to layer but is not a buffer of its own"
        last = max((k for k in range(lay.size) for v in lay.node(0, k).inputs
                    if v is not None and storage_root(v) is c.into), default=-1)
        if last >= c.at[0]:
            return f"layer 0 still reads {c.into.name!r} when it writes {hv.name!r}, which takes its place"
    for pos, n in enumerate(g.nodes):
        inside = lay.start <= pos < lay.end
        layer = (pos - lay.start) // lay.size if inside else None
        for v in n.inputs:
            if v is None:
                continue
            if id(v) in intos and (pos >= lay.end or (inside and layer != 0)):
                return f"{n.name!r} reads {v.name!r}, which the layers overwrite"
            w = lay.where.get(id(v))
            if w is None or w[0] == layer:
                continue
            nxt = w[0] + 1 if w[0] + 1 < lay.count else None
            if (w[1], w[2]) not in handed or layer != nxt or (nxt is None and pos < lay.end):
                return f"{n.name!r} reads {v.name!r} of layer {w[0]}"
    if any(id(v) in lay.where for v in g.outputs):
        return "a graph output is a layer's value"
    return ""


class Fold:
    """The planner's time axis with the repeated layers of each graph in `graphs` folded into layer 0
    (the `Folding` of plan/lifetimes.py). Graphs without foldable layers stay as they are."""

    def __init__(self, graphs: list[Graph], scratch: dict[int, int]) -> None:
        self.layers: dict[int, Layers] = {}
        for g in graphs:
            lay = find_layers(g)
            # a layer's scratch takes layer 0's place, so it must be of layer 0's size
            if isinstance(lay, Layers) and all(scratch.get(id(lay.node(i, k)), 0) == scratch.get(id(lay.node(0, k)), 0)
                                               for i in range(1, lay.count) for k in range(lay.size)):
                self.layers[id(g)] = lay

    def __bool__(self) -> bool:
        return bool(self.layers)

    def nodes(self, g: Graph) -> Sequence[Node]:
        lay = self.layers.get(id(g))
        if lay is None:
            return g.nodes
        return g.nodes[:lay.start + lay.size] + g.nodes[lay.end:]

    def buffer(self, g: Graph, root: Value) -> str:
        lay = self.layers.get(id(g))
        if lay is None or id(root) not in lay.where:
            return buffer_name(g, root)
        i, k, o = lay.where[id(root)]
        # what a layer hands on is one buffer (layer 0's), tied to the carried value's
        return buffer_name(g, lay.node(0, k).outputs[o])

    def scratch(self, g: Graph, node: Node) -> str:
        return scratch_name(g, node)  # only layer 0's nodes are on the folded axis

    def body(self, g: Graph) -> tuple[int, int, frozenset[str]]:
        lay = self.layers.get(id(g))
        if lay is None:
            return 0, 0, frozenset()
        across = {buffer_name(g, v) for v in lay.invariants} | {buffer_name(g, lay.handed(0, c)) for c in lay.carries}
        return lay.start, lay.start + lay.size, frozenset(across)

    def ties(self, buffers: list[Buffer]) -> list[tuple[int, int]]:
        """On the folded axis: each carried value's buffer and the buffer the layers hand it on in."""
        index = {b.name: i for i, b in enumerate(buffers)}
        out = []
        for lay in self.layers.values():
            g = lay.graph
            for c in lay.carries:
                a, b = index.get(buffer_name(g, c.into)), index.get(buffer_name(g, lay.handed(0, c)))
                if a is not None and b is not None:
                    out.append((a, b))
        return out

    def unfold_names(self) -> dict[str, str]:
        """Real buffer name -> the folded buffer whose offset it takes (names not listed take their own)."""
        out: dict[str, str] = {}
        for lay in self.layers.values():
            g = lay.graph
            for i in range(1, lay.count):
                for k in range(lay.size):
                    node, first = lay.node(i, k), lay.node(0, k)
                    out[scratch_name(g, node)] = scratch_name(g, first)
                    for o, v in enumerate(node.outputs):
                        root = storage_root(v)
                        if root is v:
                            out[buffer_name(g, v)] = self.buffer(g, v)
        return out

    def real_ties(self, buffers: list[Buffer]) -> list[tuple[int, int]]:
        """On the real axis: every buffer of layers 1 .. N-1 with layer 0's, every handed-on value with the
        carried one (what the checker verifies: model.c's loop runs every layer on layer 0's pointers)."""
        index = {b.name: i for i, b in enumerate(buffers)}
        out = []
        for real, folded in self.unfold_names().items():
            if real in index and folded in index:
                out.append((index[real], index[folded]))
        for lay in self.layers.values():
            for c in lay.carries:
                a, b = buffer_name(lay.graph, c.into), buffer_name(lay.graph, lay.handed(0, c))
                if a in index and b in index:
                    out.append((index[b], index[a]))
        return out
