"""Dead-code elimination.

Rules:
- a node none of whose outputs is read (by a node or as a graph output) is removed, unless it writes state;
- a constant nobody reads is dropped, so it takes no room in weights.bin.
"""

from __future__ import annotations

from slmc.ir import Graph


def run(graph: Graph) -> Graph:
    graph.prune()
    return graph
