"""model.h / model.c of a build with an expert cache (passes/expert_cache.py): SLMC_EXPERT_CACHE and
slmc_expert_stats, which reads the cache's counters from its table in the arena (main_llm.c prints them)."""

from __future__ import annotations

from slmc.ir import Graph
from slmc.plan.plan import MemoryPlan

TABLE = "expert_slots"   # passes/expert_cache.py's state: [slots] tags, [slots] last uses, then the counters


def expert_api(graphs: list[Graph], plan: MemoryPlan) -> tuple[list[str], list[str]]:
    """(model.h lines, model.c lines); none for a build without an expert cache."""
    table = next((v for g in graphs for v in g.states() if v.name == TABLE), None)
    if table is None:
        return [], []
    slots = (table.shape[0] - 5) // 2
    h = ["", "/* The expert cache: uses served from its SRAM slots, loads from flash and the bytes they copied. */",
         "#define SLMC_EXPERT_CACHE 1",
         "void slmc_expert_stats(uint32_t *hits, uint32_t *misses, uint64_t *bytes);"]
    c = ["void slmc_expert_stats(uint32_t *hits, uint32_t *misses, uint64_t *bytes) {",
         f"    const int32_t *t = (const int32_t *)(slmc_arena + {plan.offset_of(TABLE)}) + {2 * slots};",
         "    *hits = (uint32_t)t[1];",
         "    *misses = (uint32_t)t[2];",
         "    *bytes = ((uint64_t)(uint32_t)t[4] << 32) | (uint32_t)t[3];",
         "}", ""]
    return h, c
