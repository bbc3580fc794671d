"""The expert cache of a mixture-of-experts build (`--expert-slots N`, SiDA's idea on an MCU): the experts'
weights stay in flash, `slots` slots in SRAM hold copies of the experts in use, and each moe_experts node
fetches the experts its rows chose through it (kernels/c/expert_cache.c).

Rules: two state buffers join the graph, shared by every layer and by the decode and prompt graphs (same
names): `expert_pool` u8[slots * slot_bytes] and `expert_slots` i32[3 * slots + 8] (each slot's tag, last use
and prefetch mark, then the clock and the counters model.c's slmc_expert_stats reads); every moe_experts(_q8)
node takes them as two more inputs, with attrs slots, slot_bytes, policy (POLICIES' index), tag0 = layer *
n_experts. policy predictor: passes/expert_predict.py then adds the predictor that fills the slots ahead.
A slot holds one expert's arrays (gate, up, down; then their scales in q8), each at a multiple of 4 bytes.
The numbers do not change: the numpy twin ignores the cache.
"""

from __future__ import annotations

from slmc.errors import SlmcError
from slmc.ir import DType, Graph, Node
from slmc.ir.verify import verify

POLICIES = ("none", "lru", "predictor")  # none: every use loads; lru: recently used experts stay; predictor: lru
TABLE_EXTRA = 8   # clock, hits, misses, bytes loaded (low and high word), prefetches, prefetch hits, planned
TABLE_ARRAYS = 3  # per slot: tag, last use, prefetch mark


def expert_arrays(n: Node) -> list:
    """The stacked [n_experts, ...] weight inputs of a moe_experts(_q8) node, in the order a slot holds them."""
    return [n.inputs[i] for i in ((3, 4, 5) if n.op == "moe_experts" else (3, 5, 7, 4, 6, 8))]


def slot_bytes(n: Node) -> int:
    """Bytes of one expert's copy: each of its arrays rounded up to 4 bytes."""
    return sum((a.nbytes // a.shape[0] + 3) // 4 * 4 for a in expert_arrays(n))


def run(graph: Graph, slots: int, policy: str) -> Graph:
    nodes = [n for n in graph.nodes if n.op in ("moe_experts", "moe_experts_q8")]
    if not nodes:
        raise SlmcError("--expert-slots applies to mixture-of-experts models, and this model has none",
                        "omit --expert-slots")
    if policy not in POLICIES:
        raise SlmcError(f"unknown --expert-prefetch '{policy}'", f"use one of {', '.join(POLICIES)}")
    k, n_experts = nodes[0].attrs["k"], nodes[0].attrs["n_experts"]
    if slots < k:
        raise SlmcError(f"--expert-slots {slots} is fewer than the {k} experts a token uses",
                        f"use --expert-slots {k} or more")
    size = max(slot_bytes(n) for n in nodes)
    pool = graph.add_state("expert_pool", (slots * size,), DType.U8)
    table = graph.add_state("expert_slots", (TABLE_ARRAYS * slots + TABLE_EXTRA,), DType.I32)
    for n in nodes:
        n.inputs += [pool, table]
        pool.users.append(n)
        table.users.append(n)
        n.attrs.update(slots=slots, slot_bytes=size, policy=POLICIES.index(policy), tag0=n.layer * n_experts)
    return verify(graph, after="the expert_cache pass")
