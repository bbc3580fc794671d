"""The NPU's weights (quant/npu.py): every matrix product bound to the NPU gets its weights in the
NPU's bit-plane layout (pack_npu), optionally re-quantized to fewer bits first (the FFN matrices
w1/w2/w3 at `ffn_bits`; their per-group scales are re-computed). Rules:
- only linear_q8 nodes in `nodes` change; their node gets attrs layout="npu", npu_bits=<bits>;
- a constant another operator also reads (a tied embedding) is left as it is for that operator: the
  node gets a new constant of its own, and a constant nobody reads any more leaves the graph;
- the reference interpreter reads the layout back (reference/llm_ops.py), so the numpy twin of the
  graph stays exact.
"""

from __future__ import annotations

from slmc.ir import Graph, Node, ValueKind
from slmc.ir.roles import Role
from slmc.ir.verify import verify
from slmc.quant.npu import pack_npu, requantize

FFN = (Role.GATE, Role.UP, Role.DOWN)   # the FFN matrices (w1, w3, w2), by their role (ir/roles.py)


def _swap(g: Graph, node: Node, i: int, data, name: str) -> None:
    old = node.inputs[i]
    new = g.add_const(g.unique(name), data)
    node.inputs[i] = new
    new.users.append(node)
    if old is not None:
        old.users = [u for u in old.users if u is not node]
        if old.kind == ValueKind.CONST and not old.users and old not in g.outputs:
            g.values.pop(old.name, None)


def run(graphs: list[Graph], nodes: set[int], ffn_bits: int = 8) -> list[Graph]:
    for g in graphs:
        for n in g.nodes:
            if id(n) not in nodes or n.op != "linear_q8" or n.attrs.get("layout"):
                continue
            wq, ws = n.inputs[2].data, n.inputs[3].data  # type: ignore[union-attr]
            bits = ffn_bits if n.role in FFN else 8
            if bits < 8:
                wq, ws = requantize(wq, ws, n.attrs["group"], bits)
                _swap(g, n, 3, ws, f"{n.inputs[3].name}_{bits}b")  # type: ignore[union-attr]
            _swap(g, n, 2, pack_npu(wq, bits), f"{n.inputs[2].name}_npu{bits}")  # type: ignore[union-attr]
            n.attrs["layout"], n.attrs["npu_bits"] = "npu", bits
    return [verify(g, after="the npu_weights pass") for g in graphs]
