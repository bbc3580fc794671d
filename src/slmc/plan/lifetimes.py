"""Buffers with lifetimes over one or more step graphs laid end to end on one time axis.

Graph inputs and outputs are the caller's memory (token ids, logits) and take no arena space;
constants live in the weights blob. State (the KV cache) is live over the whole axis, so decode
and prompt steps share it while their temporaries share the rest of the arena. Aliased outputs
(views, in-place state updates) extend the lifetime of the buffer they alias.
"""

from __future__ import annotations

from dataclasses import dataclass

from slmc.ir import Graph, Node, Value, ValueKind
from slmc.ir.ops import ALIASES

ALIGN = 16


@dataclass(frozen=True)
class Buffer:
    name: str
    size: int
    first: int      # first time step at which it is live (inclusive)
    last: int       # last time step (inclusive)
    align: int = ALIGN


def storage_root(v: Value) -> Value:
    """The value whose buffer `v` lives in (itself unless it is an alias)."""
    while v.producer is not None and v.producer.op in ALIASES:
        v = v.producer.inputs[ALIASES[v.producer.op]]  # type: ignore[assignment]
    return v


def buffer_name(graph: Graph, v: Value) -> str:
    """State is shared by every graph (one KV cache); temporaries of different graphs are different
    buffers even where the graphs use the same value names."""
    return v.name if v.kind == ValueKind.STATE else f"{graph.name}/{v.name}"


def scratch_name(graph: Graph, node: Node) -> str:
    return f"{graph.name}/{node.name}.scratch"


def buffers_for(graphs: list[Graph], scratch: dict[int, int]) -> tuple[list[Buffer], int]:
    """Buffers of all graphs (time steps numbered across them) and the length of the time axis.
    `scratch` maps id(node) -> bytes of scratch the node's kernel needs while it runs."""
    spans: dict[str, list[int]] = {}
    sizes: dict[str, int] = {}
    states: dict[str, int] = {}
    t = 0
    for g in graphs:
        external = {id(v) for v in g.inputs} | {id(v) for v in g.outputs}
        for node in g.nodes:
            touched = [v for v in node.inputs if v is not None] + list(node.outputs)
            for v in touched:
                root = storage_root(v)
                if id(root) in external or root.kind in (ValueKind.CONST, ValueKind.INPUT):
                    continue
                if root.kind == ValueKind.STATE:
                    states[root.name] = root.nbytes
                    continue
                name = buffer_name(g, root)
                span = spans.setdefault(name, [t, t])
                span[0], span[1] = min(span[0], t), max(span[1], t)
                sizes[name] = root.nbytes
            if scratch.get(id(node), 0):
                spans[scratch_name(g, node)] = [t, t]
                sizes[scratch_name(g, node)] = scratch[id(node)]
            t += 1
    end = max(t - 1, 0)
    bufs = [Buffer(name, size, 0, end) for name, size in states.items()]
    bufs += [Buffer(name, sizes[name], s[0], s[1]) for name, s in spans.items()]
    return bufs, t


def live_peak(buffers: list[Buffer], steps: int) -> int:
    """The conventional lower bound: the largest sum of sizes of buffers live at one time step."""
    delta = [0] * (steps + 1)
    for b in buffers:
        delta[b.first] += b.size
        delta[b.last + 1] -= b.size
    peak = cur = 0
    for d in delta:
        cur += d
        peak = max(peak, cur)
    return peak
