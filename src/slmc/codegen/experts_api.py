"""model.h / model.c of a build with an expert cache (passes/expert_cache.py): SLMC_EXPERT_CACHE and
slmc_expert_stats, which reads the cache's counters from its table in the arena (main_llm.c prints them)."""

from __future__ import annotations

from slmc.ir import Graph
from slmc.plan.plan import MemoryPlan

TABLE = "expert_slots"   # passes/expert_cache.py's state: [slots] tags, last uses, prefetch marks, then the counters


def expert_api(graphs: list[Graph], plan: MemoryPlan) -> tuple[list[str], list[str]]:
    """(model.h lines, model.c lines); none for a build without an expert cache."""
    table = next((v for g in graphs for v in g.states() if v.name == TABLE), None)
    if table is None:
        return [], []
    from slmc.passes.expert_cache import TABLE_ARRAYS, TABLE_EXTRA

    slots = (table.shape[0] - TABLE_EXTRA) // TABLE_ARRAYS
    h = ["", "/* The expert cache: uses served from its SRAM slots, loads at use (misses) and the bytes all loads",
         "   copied; the predictor's loads ahead of use and the uses they served. */",
         "#define SLMC_EXPERT_CACHE 1",
         "void slmc_expert_stats(uint32_t *hits, uint32_t *misses, uint64_t *bytes);",
         "void slmc_expert_prefetch_stats(uint32_t *prefetches, uint32_t *prefetch_hits, uint32_t *planned);"]
    c = ["static const int32_t *slmc_expert_counters(void) {",
         f"    return (const int32_t *)(slmc_arena + {plan.offset_of(TABLE)}) + {TABLE_ARRAYS * slots};",
         "}", "",
         "void slmc_expert_stats(uint32_t *hits, uint32_t *misses, uint64_t *bytes) {",
         "    const int32_t *t = slmc_expert_counters();",
         "    *hits = (uint32_t)t[1];",
         "    *misses = (uint32_t)t[2];",
         "    *bytes = ((uint64_t)(uint32_t)t[4] << 32) | (uint32_t)t[3];",
         "}", "",
         "void slmc_expert_prefetch_stats(uint32_t *prefetches, uint32_t *prefetch_hits, uint32_t *planned) {",
         "    const int32_t *t = slmc_expert_counters();",
         "    *prefetches = (uint32_t)t[5];",
         "    *prefetch_hits = (uint32_t)t[6];",
         "    *planned = (uint32_t)t[7];",
         "}", ""]
    return h, c
