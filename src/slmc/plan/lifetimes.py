"""Buffers with lifetimes over one or more step graphs laid end to end on one time axis.

Graph inputs and outputs are the caller's memory (token ids, logits) and take no arena space;
constants live in the weights blob. State (the KV cache) is live over the whole axis, so decode
and prompt steps share it while their temporaries share the rest of the arena. Aliased outputs
(views, in-place state updates) extend the lifetime of the buffer they alias.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence

from slmc.ir import Graph, Node, Value, ValueKind
from slmc.ir.ops import ALIASES
from slmc.kernels.overlap import Share

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


class Folding(Protocol):
    """A time axis on which a graph's repeated layers appear once (plan/layers.py): the nodes that run, the
    buffer each value and scratch lives in there, and the values that must stay live over the whole layer."""

    def nodes(self, g: Graph) -> Sequence[Node]: ...
    def buffer(self, g: Graph, root: Value) -> str: ...
    def scratch(self, g: Graph, node: Node) -> str: ...
    def body(self, g: Graph) -> tuple[int, int, frozenset[str]]: ...  # layer 0's node range, buffers live across it


class _Unrolled:
    """The real time axis: every node, every value its own buffer."""

    def nodes(self, g: Graph) -> Sequence[Node]:
        return g.nodes

    def buffer(self, g: Graph, root: Value) -> str:
        return buffer_name(g, root)

    def scratch(self, g: Graph, node: Node) -> str:
        return scratch_name(g, node)

    def body(self, g: Graph) -> tuple[int, int, frozenset[str]]:
        return 0, 0, frozenset()


UNROLLED = _Unrolled()


def buffers_for(graphs: list[Graph], scratch: dict[int, int], fold: Folding = UNROLLED) -> tuple[list[Buffer], int]:
    """Buffers of all graphs (time steps numbered across them) and the length of the time axis.
    `scratch` maps id(node) -> bytes of scratch the node's kernel needs while it runs. `fold`: the time axis
    (the real one, or the one with each graph's layers folded into one)."""
    spans: dict[str, list[int]] = {}
    sizes: dict[str, int] = {}
    states: dict[str, int] = {}
    t = 0
    for g in graphs:
        external = {id(v) for v in g.inputs} | {id(v) for v in g.outputs}
        for node in g.nodes:  # state is live over the whole axis, whether or not its nodes are on it
            for v in [v for v in node.inputs if v is not None] + list(node.outputs):
                root = storage_root(v)
                if root.kind == ValueKind.STATE and id(root) not in external:
                    states[root.name] = root.nbytes
        t0 = t
        for node in fold.nodes(g):
            touched = [v for v in node.inputs if v is not None] + list(node.outputs)
            for v in touched:
                root = storage_root(v)
                if id(root) in external or root.kind in (ValueKind.CONST, ValueKind.INPUT, ValueKind.STATE):
                    continue
                name = fold.buffer(g, root)
                span = spans.setdefault(name, [t, t])
                span[0], span[1] = min(span[0], t), max(span[1], t)
                sizes[name] = root.nbytes
            if scratch.get(id(node), 0):
                spans[fold.scratch(g, node)] = [t, t]
                sizes[fold.scratch(g, node)] = scratch[id(node)]
            t += 1
        lo, hi, across = fold.body(g)
        for name in across:  # read again by the next pass through the layer: live until the layer's end
            if name in spans:
                spans[name][1] = max(spans[name][1], t0 + hi - 1)
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


@dataclass(frozen=True)
class Overlap:
    """Buffer `out` (index) may lie over buffer `inp` at out.offset - inp.offset in [lo, hi]: the node
    at `step` consumes inp for the last time while it writes out (kernels/overlap.py)."""
    out: int
    inp: int
    step: int
    share: Share

    @property
    def lo(self) -> int:
        return self.share.lo

    @property
    def hi(self) -> int:
        return self.share.hi


def overlaps_for(graphs: list[Graph], buffers: list[Buffer], contracts: dict[int, tuple],
                 fold: Folding = UNROLLED) -> list[Overlap]:
    """The overlaps the kernels' contracts (`contracts`: id(node) -> Shares) allow in this plan: only where
    the node is the input's last reader and the output's first writer, both whole buffers of their own."""
    index = {b.name: i for i, b in enumerate(buffers)}
    out: list[Overlap] = []
    t = 0
    for g in graphs:
        for node in fold.nodes(g):
            roots = [storage_root(v) for v in node.inputs if v is not None]
            for sh in contracts.get(id(node), ()):
                vi, vo = node.inputs[sh.inp], node.outputs[sh.out]
                ri, ro = storage_root(vi), storage_root(vo)
                i, o = index.get(fold.buffer(g, ri)), index.get(fold.buffer(g, ro))
                if (i is None or o is None or ri.kind == ValueKind.STATE or ro is not vo or ri.nbytes != vi.nbytes
                        or sum(r is ri for r in roots) != 1 or buffers[i].last != t or buffers[o].first != t
                        or sh.steps * sh.in_chunk != buffers[i].size or sh.steps * sh.out_chunk != buffers[o].size):
                    continue
                out.append(Overlap(o, i, t, sh))
            t += 1
    return out


def _max_overlap(ov: Overlap, si: int, so: int) -> int:
    def at(d: int) -> int:
        return max(0, min(d + so, si) - max(d, 0))
    clamp = lambda d: min(max(d, ov.lo), ov.hi)  # noqa: E731
    return max(at(clamp(0)), at(clamp(si - so)), at(ov.lo), at(ov.hi))


def shared_peak(buffers: list[Buffer], steps: int, overlaps: list[Overlap]) -> int:
    """The lower bound under the overlap contracts: at each step the live bytes less the most the outputs
    written there can lie over the inputs consumed there (no output over more than its size, no input
    under more than its size)."""
    live = [0] * (steps + 1)
    for b in buffers:
        live[b.first] += b.size
        live[b.last + 1] -= b.size
    for t in range(1, steps + 1):
        live[t] += live[t - 1]
    by_step: dict[int, list[Overlap]] = {}
    for ov in overlaps:
        by_step.setdefault(ov.step, []).append(ov)
    return max((live[t] - step_saving(buffers, by_step.get(t, [])) for t in range(steps)), default=0)


def step_saving(buffers: list[Buffer], ovs: list[Overlap]) -> int:
    """The most bytes the outputs of one step can lie over the inputs it consumes, under `ovs` (that step's)."""
    per_out: dict[int, int] = {}
    for ov in ovs:
        per_out[ov.out] = per_out.get(ov.out, 0) + _max_overlap(ov, buffers[ov.inp].size, buffers[ov.out].size)
    return min(sum(min(v, buffers[o].size) for o, v in per_out.items()),
               sum(buffers[i].size for i in {ov.inp for ov in ovs}))
