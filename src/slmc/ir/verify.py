"""Invariants of an IR graph, checked after import and after every pass (issue 15).

`verify(graph)` raises an SlmcError naming the node, the operator and what is wrong where:
- a value is defined twice (two nodes writing one value, a node writing a graph input or a constant),
  read before it is defined, or read although it is not part of the graph (a dangling input); a graph
  output is computed by nothing; the def-use links disagree with the node lists;
- a tensor has a negative dimension, a rank above MAX_RANK, more than MAX_TENSOR_BYTES, or the graph's
  tensors together exceed MAX_GRAPH_BYTES (so that nothing after this point allocates without bound: a
  [2^31, 8] input is refused here, before the planner or a numpy twin sizes anything by it);
- a constant's data does not have its declared shape and type;
- a node breaks its operator's rules (ir/op_rules.py): arity, attribute types and ranges, and shapes
  RE-INFERRED from its inputs, which must equal the types the graph records. An ONNX file's annotations
  are therefore never trusted, and a pass that records a wrong type is caught at the pass.
It reads types only (plus the few constants a rule needs), so it costs O(nodes) and runs after every pass.
Zero-sized dimensions are allowed: ONNX defines empty tensors, and every kernel skips empty work.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from slmc.errors import SlmcError
from slmc.ir.graph import Graph, Node, Value, ValueKind
from slmc.ir.op_rules import MAX_RANK, infer, quote
from slmc.ir.types import TensorType

# Caps on sizes. An MCU has kilobytes to megabytes; the largest checkpoints users bring to slmc
# (SmolLM2-135M: 0.54 GB of float32 weights and, at its 8,192 positions, a 0.38 GB KV cache) must still
# reach the fit step, which says why they do not fit. The caps are above those, at protobuf's own 2 GiB
# limit for one ONNX file, and far below what would exhaust the compiling machine (the importer
# evaluates constant sub-graphs in float64).
MAX_TENSOR_BYTES = 1 << 28      # 256 MiB in one tensor
MAX_GRAPH_BYTES = 1 << 31       # 2 GiB in all tensors of a graph together
MAX_ELEMENTS = (1 << 31) - 1    # the C kernels count elements in int


def check_shape(shape: Sequence[int], itemsize: int, what: str) -> tuple[int, ...]:
    """`shape` as a tuple of ints when it is a valid static shape within the caps (for shapes read from a
    file, before anything is allocated by them); an SlmcError naming `what` otherwise."""
    if len(shape) > MAX_RANK:  # (before copying: a file may list millions of dimensions)
        raise SlmcError(f"{what} has rank {len(shape)}, above slmc's limit of {MAX_RANK}", "check the model")
    dims = list(shape)
    if any(not isinstance(d, (int, np.integer)) or d < 0 for d in dims):
        raise SlmcError(f"{what} has shape {dims}: dimensions must be non-negative integers",
                        "slmc compiles static shapes: export the model with fixed, valid dimensions")
    n = math.prod(int(d) for d in dims)
    if any(d > MAX_ELEMENTS for d in dims):  # even in an empty tensor: the C takes every dimension as an int
        raise SlmcError(f"{what} has shape {dims}: a dimension beyond slmc's limit of {MAX_ELEMENTS:,}",
                        "a model for a microcontroller is far smaller; check the model")
    if n > MAX_ELEMENTS or n * itemsize > MAX_TENSOR_BYTES:
        raise SlmcError(f"{what} has shape {dims} ({n:,} elements, {n * itemsize:,} bytes): beyond slmc's limit "
                        f"of {MAX_TENSOR_BYTES:,} bytes per tensor", "a model for a microcontroller is far smaller; check the model")
    return tuple(int(d) for d in dims)


def check_type(t: TensorType, what: str) -> None:
    check_shape(t.shape, t.dtype.size, what)


def _fix(after: str) -> str:
    return (f"this is a bug in slmc ({after}); please report it" if after
            else "the model file is malformed or its exporter is wrong: fix the model (or export it again)")


def _values_of(node: Node) -> list[np.ndarray | None]:
    # constants a rule may read (Range's bounds, Gather's indices); small ones only, to stay cheap
    return [v.data if v is not None and v.kind == ValueKind.CONST and v.data is not None and v.data.size <= 4096
            else None for v in node.inputs]


def check_node(node: Node, after: str = "", mixed: bool = False) -> None:
    """One node against its operator's rules: the recorded output types must be the inferred ones."""
    ins = [None if v is None else v.type for v in node.inputs]
    want = infer(node.op, node.name, ins, node.attrs, len(node.outputs), _values_of(node), mixed)
    if want is None:
        return
    for i, (v, t) in enumerate(zip(node.outputs, want)):
        if v.type != t:
            raise SlmcError(f"{node.op} node {quote(node.name)}: output {i} ({quote(v.name)}) is recorded as {v.type}, but its "
                            f"inputs {[str(x) for x in ins]} give {t}", _fix(after))


def _check_const(v: Value, after: str) -> None:
    d = v.data
    if d is None or tuple(d.shape) != v.shape or d.dtype != v.dtype.np:
        got = "no data" if d is None else f"{d.dtype}{list(d.shape)} data"
        raise SlmcError(f"constant {quote(v.name)} is declared {v.type} but holds {got}", _fix(after))


def verify(graph: Graph, after: str = "", mixed: bool = False) -> Graph:
    """Raise an SlmcError where `graph` breaks an invariant (module docstring); returns the graph.
    `after`: the stage that produced it, for the message (empty: a model file). `mixed`: integer and
    float32 operands may meet (an ONNX graph that may be a Deeploy integer network, before integerize;
    the graph that reaches the kernels is always checked without it)."""
    fix = _fix(after)
    defined: set[int] = set()
    total = 0
    for v in graph.inputs:
        if v.kind != ValueKind.INPUT or v.producer is not None:
            raise SlmcError(f"graph input {quote(v.name)} is not an input value", fix)
    for v in graph.values.values():
        check_type(v.type, f"value {quote(v.name)}")
        total += v.nbytes
        if v.kind == ValueKind.CONST:
            _check_const(v, after)
        if v.kind != ValueKind.TEMP:
            defined.add(id(v))
    if total > MAX_GRAPH_BYTES:
        raise SlmcError(f"graph {quote(graph.name)} holds {total:,} bytes of tensors, beyond slmc's limit of "
                        f"{MAX_GRAPH_BYTES:,}", "a model for a microcontroller is far smaller; check the model")
    registered = {id(v) for v in graph.values.values()}
    in_graph = {id(n) for n in graph.nodes}
    for node in graph.nodes:
        where = f"{node.op} node {quote(node.name)}"
        for i, v in enumerate(node.inputs):
            if v is None:
                continue
            if id(v) not in registered:
                raise SlmcError(f"{where}: input {i} ({quote(v.name)}) is not a value of the graph", fix)
            if id(v) not in defined:
                raise SlmcError(f"{where}: input {i} ({quote(v.name)}) is read before any node computes it", fix)
            if not any(u is node for u in v.users):
                raise SlmcError(f"{where}: input {i} ({quote(v.name)}) does not list the node among its users", fix)
        for v in node.outputs:
            if id(v) in defined or v.kind != ValueKind.TEMP:
                raise SlmcError(f"{where}: writes {quote(v.name)}, which is already defined (two writers of one value)", fix)
            if v.producer is not node or id(v) not in registered:
                raise SlmcError(f"{where}: output {quote(v.name)} is not linked to the node", fix)
            defined.add(id(v))
        check_node(node, after, mixed)
    for v in graph.values.values():
        for u in v.users:
            if id(u) not in in_graph or not any(x is v for x in u.inputs):
                raise SlmcError(f"value {quote(v.name)} lists a user {quote(u.name)} that does not read it", fix)
    for v in graph.outputs:
        if id(v) not in defined or id(v) not in registered:
            raise SlmcError(f"graph output {quote(v.name)} is computed by no node", fix)
    return graph


__all__ = ["verify", "check_node", "check_shape", "check_type", "MAX_TENSOR_BYTES",
           "MAX_GRAPH_BYTES"]
