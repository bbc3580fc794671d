"""What an expert cache costs (passes/expert_cache.py): the counters a run prints, and the time its loads
take, estimated from the target's memory model. ASSUMED: a miss copies the expert from the slowest level
(flash, or L3) at that level's sustained bandwidth (targets/builtin.py) and the core waits for it (no
overlap with compute: the on-demand cost, an upper bound for a prefetching policy)."""

from __future__ import annotations

from slmc.targets import Target

COUNTERS = ("expert_hits", "expert_misses", "expert_bytes_loaded")


def slow_bytes_per_s(target: Target) -> float | None:
    """Sustained bandwidth of the target's slowest memory level (where the experts stay), if it has levels."""
    if not target.levels or not target.clock_hz:
        return None
    return target.levels[-1].bytes_per_cycle * target.clock_hz


def expert_stats(stats: dict[str, float], rep: dict, target: Target, counts: dict) -> dict:
    """`slmc run --json`'s expert fields: the run's totals and the estimated stall per generated position,
    which an estimated tokens/s of the run (`counts`, toolchain/profile.py) then includes."""
    if "expert_hits" not in stats:
        return {}
    out: dict = {k: int(stats[k]) for k in COUNTERS}
    bw, positions = slow_bytes_per_s(target), stats.get("positions", 0)
    stall = out["expert_bytes_loaded"] / bw / positions if bw and positions else None
    out["expert_stall_s_per_token"] = stall
    if stall is not None and counts.get("estimated_tokens_per_s"):
        out["estimated_tokens_per_s"] = 1.0 / (1.0 / counts["estimated_tokens_per_s"] + stall)
        out["estimate_basis"] = f"{counts.get('estimate_basis')}, plus the expert cache's loads from flash"
    return out


def report_section(graphs: list, slots: int, policy: str) -> dict | None:
    """report.json's `experts`: the model's experts and what the cache holds of them."""
    from slmc.passes.expert_cache import slot_bytes

    nodes = [n for g in graphs[:1] for n in g.nodes if n.op in ("moe_experts", "moe_experts_q8")]
    if not nodes:
        return None
    n = nodes[0]
    per_expert = slot_bytes(n)
    return dict(count=n.attrs["n_experts"], top_k=n.attrs["k"], layers=len(nodes), slots=slots,
                slot_bytes=per_expert if slots else 0, cache_bytes=slots * per_expert,
                all_experts_bytes=per_expert * n.attrs["n_experts"] * len(nodes), prefetch=policy if slots else None,
                predictor_bytes=0, predictor_hit_rate=None)
