"""Run an IR graph with the numpy twins. State (the KV cache) lives in a dict the caller keeps."""

from __future__ import annotations

import numpy as np

from slmc.errors import SlmcError
from slmc.ir import Graph, ValueKind
from slmc.reference.registry import REFERENCE


def new_state(graph: Graph) -> dict[str, np.ndarray]:
    return {v.name: np.zeros(v.shape, v.dtype.np) for v in graph.states()}


def run(graph: Graph, feeds: dict[str, np.ndarray], state: dict[str, np.ndarray] | None = None,
        keep: bool = False) -> dict[str, np.ndarray]:
    """Returns the graph outputs by name (every value when `keep`). `state` is updated in place."""
    env: dict[str, np.ndarray] = {}
    for v in graph.inputs:
        if v.name not in feeds:
            raise SlmcError(f"no value given for graph input '{v.name}'", "pass every graph input")
        env[v.name] = np.asarray(feeds[v.name], dtype=v.dtype.np).reshape(v.shape)
    for v in graph.values.values():
        if v.kind == ValueKind.CONST:
            env[v.name] = v.data  # type: ignore[assignment]
        elif v.kind == ValueKind.STATE:
            if state is None:
                state = new_state(graph)
            env[v.name] = state.setdefault(v.name, np.zeros(v.shape, v.dtype.np))
    for node in graph.nodes:
        fn = REFERENCE.get(node.op)
        if fn is None:
            raise SlmcError(f"operator '{node.op}' has no reference implementation", "this is a bug in slmc")
        attrs = dict(node.attrs, _out_shapes=[o.shape for o in node.outputs])
        outs = fn([env[v.name] if v is not None else None for v in node.inputs], attrs)
        for v, arr in zip(node.outputs, outs):
            arr = np.asarray(arr)
            if tuple(arr.shape) != v.shape:
                raise AssertionError(f"{node.name}: reference produced {arr.shape}, IR says {v.shape}")
            env[v.name] = arr
    if keep:
        return env
    return {v.name: env[v.name] for v in graph.outputs}
