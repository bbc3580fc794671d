#include "slmc_kernels.h"

/* The expert cache of a mixture-of-experts build (passes/expert_cache.py): `slots` slots of `slot_bytes`
 * in `pool` (state in SRAM), the experts' weights in flash. table: [slots] the tag + 1 each slot holds
 * (0: empty), [slots] its last use, then the clock, hits, misses and bytes loaded (low, high word).
 * An expert's weights are `parts` arrays, copied one after the other, each at a multiple of 4 bytes.
 * lru: a slot still holding the expert is reused (a hit) and a miss replaces the least recently used;
 * otherwise every use loads the expert (on demand, no reuse). Returns the expert's copy. */
const uint8_t *slmc_expert_fetch(uint8_t *pool, int32_t *table, int slots, int slot_bytes, int lru, int32_t tag,
                                 const uint8_t *const *src, const int32_t *bytes, int parts) {
    int32_t *tags = table, *used = table + slots, *stat = table + 2 * slots;
    int32_t clock = ++stat[0];
    int victim = 0;
    for (int s = 0; s < slots; s++) {
        if (lru && tags[s] == tag + 1) {
            used[s] = clock;
            stat[1]++;
            return pool + (size_t)s * slot_bytes;
        }
        if (used[s] < used[victim]) victim = s;
    }
    uint8_t *dst = pool + (size_t)victim * slot_bytes;
    uint32_t total = 0;
    for (int p = 0; p < parts; p++) {
        memcpy(dst + total, src[p], (size_t)bytes[p]);
        total += ((uint32_t)bytes[p] + 3u) & ~3u;
    }
    tags[victim] = tag + 1;
    used[victim] = clock;
    stat[2]++;
    uint32_t lo = (uint32_t)stat[3], nlo = lo + total;
    stat[3] = (int32_t)nlo;
    if (nlo < lo) stat[4]++;
    return dst;
}
