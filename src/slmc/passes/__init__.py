"""Graph-to-graph passes (DESIGN.md rule 2: passes are functions).

Each module has `run(graph) -> graph` and a docstring listing its rules. PIPELINE is the order they run
in on an imported ONNX graph: simplify exposes constants, fold evaluates them, simplify again removes
what folding made trivial, dce drops what nobody reads.
"""

from __future__ import annotations

from typing import Callable

from slmc.ir import Graph
from slmc.ir.verify import verify
from slmc.passes import dce, fold, simplify

Pass = Callable[[Graph], Graph]
PIPELINE: list[Pass] = [simplify.run, fold.run, simplify.run, dce.run]


def run_pipeline(graph: Graph, passes: list[Pass] | None = None, mixed: bool = False) -> Graph:
    """`mixed`: the graph may still hold Deeploy's float-stored integers (ir/verify.py)."""
    # every pass's result is checked (ir/verify.py: O(nodes), types only), so a pass that breaks an
    # invariant is named at once rather than by a wrong number or a crash in the C
    for p in PIPELINE if passes is None else passes:
        graph = verify(p(graph), after=f"the {p.__module__.rsplit('.', 1)[-1]} pass", mixed=mixed)
    return graph
