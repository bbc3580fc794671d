"""Graph, Node and Value with def-use links.

A Graph is a list of nodes in execution order over SSA values. A value is a graph input, a constant
(weights, held as numpy arrays until codegen writes them out), a state buffer that persists across
calls (the KV cache), or a temporary. A node may declare that an output *aliases* one of its inputs
(views such as Reshape, and in-place updates such as the KV-cache write): the planner then gives
both the same storage.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Iterable

import numpy as np

from slmc.ir.roles import Role
from slmc.ir.types import DType, TensorType


class ValueKind(Enum):
    INPUT = "input"
    CONST = "const"
    STATE = "state"
    TEMP = "temp"


@dataclass(eq=False)
class Value:
    name: str
    type: TensorType
    kind: ValueKind = ValueKind.TEMP
    data: np.ndarray | None = None
    # a constant whose model file stored it quantized (a quant/q8.py Q8Tensor; `data` is its float copy):
    # the quantizing passes start from it, because quantizing the float copy again is not exact
    source: Any = None
    producer: "Node | None" = None
    users: list["Node"] = field(default_factory=list)

    @property
    def shape(self) -> tuple[int, ...]:
        return self.type.shape

    @property
    def dtype(self) -> DType:
        return self.type.dtype

    @property
    def nbytes(self) -> int:
        return self.type.nbytes

    def __repr__(self) -> str:
        return f"%{self.name}:{self.type}"


@dataclass(eq=False)
class Node:
    op: str
    inputs: list[Value | None]
    outputs: list[Value]
    attrs: dict[str, Any] = field(default_factory=dict)
    name: str = ""
    # the decoder layer it computes (0, 1, ...), None outside the layers: the planner gives every layer the
    # offsets of layer 0 and model.c loops over the layers on that ground (plan/layers.py, codegen/layers.py)
    layer: int | None = None
    # what it computes in the decoder block (ir/roles.py): the passes that treat one operator differently
    # by its place (quantization's formats, partitioning's splits) read this, never the node's name
    role: Role | None = None

    def __repr__(self) -> str:
        return f"{self.name or self.op}({', '.join(v.name if v else '_' for v in self.inputs)})"


class Graph:
    """Nodes in execution order. Constructing through `add_*` keeps the def-use links right."""

    def __init__(self, name: str = "graph") -> None:
        self.name = name
        self.nodes: list[Node] = []
        self.inputs: list[Value] = []
        self.outputs: list[Value] = []
        self.values: dict[str, Value] = {}
        # True for language-model step graphs: kernels take the number of valid rows (tokens) at run
        # time, and the leading dimension of activations is only the maximum
        self.dynamic_rows = False
        # stamped on every node add_node creates: a builder sets it while it adds one decoder layer's nodes
        self.layer: int | None = None
        self.role: Role | None = None   # stamped the same way (ir/roles.py)
        # an imported ONNX graph: whose conventions it was read with (frontend/onnx_convention.py's
        # Convention; report.json's "onnx")
        self.convention: Any = None
        self._counter = 0

    # ---- construction -------------------------------------------------------------------------
    def unique(self, base: str) -> str:
        name = base
        while name in self.values:
            self._counter += 1
            name = f"{base}_{self._counter}"
        return name

    def _register(self, v: Value) -> Value:
        if v.name in self.values:
            v.name = self.unique(v.name)
        self.values[v.name] = v
        return v

    def add_input(self, name: str, shape: Iterable[int], dtype: DType) -> Value:
        v = self._register(Value(name, TensorType(tuple(shape), dtype), ValueKind.INPUT))
        self.inputs.append(v)
        return v

    def add_const(self, name: str, data: np.ndarray, source: Any = None) -> Value:
        data = np.asarray(data, order="C")  # not ascontiguousarray: it turns 0-d scalars into shape (1,)
        t = TensorType(tuple(data.shape), DType.from_numpy(data.dtype))
        return self._register(Value(name, t, ValueKind.CONST, data, source))

    def add_state(self, name: str, shape: Iterable[int], dtype: DType) -> Value:
        return self._register(Value(name, TensorType(tuple(shape), dtype), ValueKind.STATE))

    def add_node(self, op: str, inputs: list[Value | None], out_types: list[TensorType],
                 attrs: dict[str, Any] | None = None, name: str = "", out_names: list[str] | None = None) -> Node:
        node = Node(op, list(inputs), [], dict(attrs or {}), name or self.unique(op), self.layer,
                    self.role)
        for i, t in enumerate(out_types):
            base = out_names[i] if out_names else (node.name if len(out_types) == 1 else f"{node.name}_{i}")
            node.outputs.append(self._register(Value(base, t, ValueKind.TEMP, producer=node)))
        for v in node.inputs:
            if v is not None:
                v.users.append(node)
        self.nodes.append(node)
        return node

    def op(self, op: str, inputs: list[Value | None], out_type: TensorType, name: str = "", **attrs: Any) -> Value:
        """Add a single-output node and return its output."""
        return self.add_node(op, inputs, [out_type], attrs, name=name, out_names=[name] if name else None).outputs[0]

    # ---- editing ------------------------------------------------------------------------------
    def replace_uses(self, old: Value, new: Value) -> None:
        for n in list(old.users):
            n.inputs = [new if v is old else v for v in n.inputs]
            new.users.append(n)
        old.users = []
        self.outputs = [new if v is old else v for v in self.outputs]

    def remove_node(self, node: Node) -> None:
        for v in node.inputs:
            if v is not None and node in v.users:
                v.users.remove(node)
        for v in node.outputs:
            self.values.pop(v.name, None)
        self.nodes.remove(node)

    def prune(self) -> None:
        """Drop nodes whose outputs nobody reads and constants nobody uses. Nodes that write state stay."""
        live: set[int] = {id(v) for v in self.outputs}
        keep: list[Node] = []
        for n in reversed(self.nodes):
            if any(id(o) in live for o in n.outputs) or n.attrs.get("side_effect"):
                keep.append(n)
                live.update(id(v) for v in n.inputs if v is not None)
            else:
                for v in n.inputs:
                    if v is not None and n in v.users:
                        v.users.remove(n)
                for v in n.outputs:
                    self.values.pop(v.name, None)
        self.nodes = list(reversed(keep))
        for name, v in list(self.values.items()):
            if v.kind == ValueKind.CONST and not v.users and v not in self.outputs:
                del self.values[name]

    # ---- queries ------------------------------------------------------------------------------
    def consts(self) -> list[Value]:
        return [v for v in self.values.values() if v.kind == ValueKind.CONST]

    def states(self) -> list[Value]:
        return [v for v in self.values.values() if v.kind == ValueKind.STATE]
