"""Graph-to-graph passes (DESIGN.md rule 2: passes are functions).

Each module has `run(graph) -> graph` and a docstring listing its rules. PIPELINE is the order they run
in on an imported ONNX graph: simplify exposes constants, fold evaluates them, simplify again removes
what folding made trivial, fold_batchnorm merges inference BatchNormalization into the Conv or Gemm before
it, dce drops what nobody reads.
"""

from __future__ import annotations

from typing import Callable

from slmc.ir import Graph
from slmc.ir.verify import verify
from slmc.passes import dce, fold, fold_batchnorm, simplify

Pass = Callable[[Graph], Graph]
PIPELINE: list[Pass] = [simplify.run, fold.run, simplify.run, fold_batchnorm.run, dce.run]


def run_pipeline(graph: Graph, passes: list[Pass] | None = None, mixed: bool = False,
                 on_pass: Callable[[str, Graph], None] | None = None) -> Graph:
    """`mixed`: the graph may still hold Deeploy's float-stored integers (ir/verify.py). `on_pass(name,
    graph)` sees the graph after each pass, numbered in order ("1-simplify", "2-fold", "3-simplify", ...):
    `--dump-dir` passes ir/printer.py's dump here."""
    # every pass's result is checked (ir/verify.py: O(nodes), types only), so a pass that breaks an
    # invariant is named at once rather than by a wrong number or a crash in the C
    for i, p in enumerate(PIPELINE if passes is None else passes, 1):
        short = p.__module__.rsplit('.', 1)[-1]
        graph = verify(p(graph), after=f"the {short} pass", mixed=mixed)
        if on_pass is not None:
            on_pass(f"{i}-{short}", graph)
    return graph
