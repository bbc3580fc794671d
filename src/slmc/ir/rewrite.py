"""A graph rebuilt node by node from another, which is left as it was.

The passes that replace operators (quantization, partitioning) walk the old graph in order and, for
each node, copy it or add what replaces it. Inputs come over first, constants and states when a new
node first uses them (so a constant only replaced nodes read does not come over); every node added
while the walk is at an old node gets that node's layer and role (Node.layer, Node.role).
"""

from __future__ import annotations

from typing import Any, Callable

from slmc.ir.graph import Graph, Node, Value, ValueKind
from slmc.ir.types import TensorType


class Rebuild:
    def __init__(self, old: Graph) -> None:
        self.old = old
        self.g = Graph(old.name)
        self.g.dynamic_rows = old.dynamic_rows
        self.map: dict[int, Value | None] = {}   # id(old value) -> its new value (None: dropped)
        for v in old.inputs:
            self.map[id(v)] = self.g.add_input(v.name, v.shape, v.dtype)

    def __getitem__(self, v: Value | None) -> Value | None:
        if v is None:
            return None
        if id(v) not in self.map:
            if v.kind is ValueKind.CONST:
                self.map[id(v)] = self.g.add_const(v.name, v.data, v.source)  # type: ignore[arg-type]
            elif v.kind is ValueKind.STATE:
                self.map[id(v)] = self.g.add_state(v.name, v.shape, v.dtype)
            else:
                raise KeyError(f"{v.name} is read before the node computing it was rebuilt")
        return self.map[id(v)]

    def copy(self, n: Node, op: str | None = None, inputs: list[Value | None] | None = None,
             types: list[TensorType] | None = None, attrs: dict[str, Any] | None = None) -> Node:
        """n in the new graph under the same name and output names; any part may be replaced."""
        node = self.g.add_node(op or n.op, [self[v] for v in n.inputs] if inputs is None else inputs,
                               types or [o.type for o in n.outputs], dict(n.attrs) if attrs is None else attrs,
                               name=n.name, out_names=[o.name for o in n.outputs])
        for old, new in zip(n.outputs, node.outputs):
            self.map[id(old)] = new
        return node

    def drop(self, n: Node) -> None:
        for o in n.outputs:
            self.map[id(o)] = None

    def run(self, step: Callable[[Node], None]) -> Graph:
        """step(node) for every old node in order; the outputs that were not dropped stay outputs."""
        for n in self.old.nodes:
            self.g.layer, self.g.role = n.layer, n.role
            step(n)
        self.g.layer = self.g.role = None
        self.g.outputs = [v for v in (self.map.get(id(o)) for o in self.old.outputs) if v is not None]
        return self.g
