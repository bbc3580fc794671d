"""Run the step graphs of every chip of a partitioned model together with the numpy twins: each
chip's nodes run until its next collective, which runs once all chips reach it
(reference/link_ops.py). The oracle for `slmc compile --chips N`."""

from __future__ import annotations

from typing import Protocol, Sequence

import numpy as np

from slmc.errors import SlmcError
from slmc.ir import Graph, ValueKind
from slmc.reference.interp import new_state
from slmc.reference.link_ops import COLLECTIVES
from slmc.reference.registry import REFERENCE


# What the oracle reads of a partition: each chip's children in the reduction tree, in the order their
# partial sums are added. plan/partition.py's PartitionPlan has it; named here, not imported, because
# plan/ sits above reference/.
class _Chip(Protocol):
    @property
    def children(self) -> tuple[int, ...]: ...


class PartitionPlan(Protocol):
    @property
    def chips(self) -> Sequence[_Chip]: ...


def run_chips(graphs: list[Graph], plan: PartitionPlan, feeds: dict[str, np.ndarray],
              states: list[dict[str, np.ndarray]]) -> list[dict[str, np.ndarray]]:
    """graphs[i] is chip i's step graph; feeds go to every chip (a chip without a `tokens` use ignores
    them); states[i] is chip i's KV cache, updated in place. Returns each chip's outputs by name."""
    children = [c.children for c in plan.chips]
    envs = []
    for g, st in zip(graphs, states):
        env: dict[str, np.ndarray] = {v.name: np.asarray(feeds[v.name], v.dtype.np).reshape(v.shape) for v in g.inputs}
        for v in g.values.values():
            if v.kind == ValueKind.CONST:
                env[v.name] = v.data  # type: ignore[assignment]
            elif v.kind == ValueKind.STATE:
                env[v.name] = st.setdefault(v.name, np.zeros(v.shape, v.dtype.np))
        envs.append(env)
    at = [0] * len(graphs)
    while True:
        for i, g in enumerate(graphs):
            while at[i] < len(g.nodes) and g.nodes[at[i]].op not in COLLECTIVES:
                node = g.nodes[at[i]]
                attrs = dict(node.attrs, _out_shapes=[o.shape for o in node.outputs])
                outs = REFERENCE[node.op]([envs[i][v.name] if v is not None else None for v in node.inputs], attrs)
                for v, arr in zip(node.outputs, outs):
                    envs[i][v.name] = np.asarray(arr)
                at[i] += 1
        done = [at[i] == len(g.nodes) for i, g in enumerate(graphs)]
        if all(done):
            break
        nodes = [None if d else g.nodes[at[i]] for i, (g, d) in enumerate(zip(graphs, done))]
        if any(n is None for n in nodes) or len({(n.op, n.name) for n in nodes}) != 1:  # type: ignore[union-attr]
            raise SlmcError(f"the chips' graphs disagree on their next collective: {[n and n.name for n in nodes]}",
                            "this is a bug in slmc's partitioning")
        first = nodes[0]
        ins = [[envs[i][v.name] if v is not None else None for v in n.inputs] for i, n in enumerate(nodes)]  # type: ignore[union-attr]
        attrs = [n.attrs for n in nodes]  # type: ignore[union-attr]
        outs = COLLECTIVES[first.op](ins, attrs, children, first.outputs[0].shape)  # type: ignore[union-attr]
        for i, n in enumerate(nodes):
            envs[i][n.outputs[0].name] = outs[i]  # type: ignore[union-attr]
            at[i] += 1
    return [{v.name: envs[i][v.name] for v in g.outputs} for i, g in enumerate(graphs)]


def new_states(graphs: list[Graph]) -> list[dict[str, np.ndarray]]:
    return [new_state(g) for g in graphs]
