#include "slmc_kernels.h"

/* The expert cache of a mixture-of-experts build (passes/expert_cache.py): `slots` slots of `slot_bytes`
 * in `pool` (state in SRAM), the experts' weights in flash. table: [slots] the tag + 1 each slot holds
 * (0: empty), [slots] its last use, [slots] its prefetch mark (the first tag of the layer it was prefetched
 * for + 1, until that layer uses it; 0: none), then the clock, hits, misses, bytes loaded (low, high word),
 * prefetches, prefetch hits and the experts planned (loaded or already held). An expert's tag is tag0 (its layer's first tag) + its index.
 * An expert's weights are `parts` arrays, copied one after the other, each at a multiple of 4 bytes.
 * policy 0 (none): every use loads the expert (on demand, no reuse); 1 (lru): a slot still holding the
 * expert is reused (a hit) and a miss replaces the least recently used; 2 (predictor): lru, and the slots
 * slmc_expert_prefetch marked for this or a later layer are not replaced (a misprediction's mark ends when
 * a later layer fetches). */
enum { STAT_CLOCK, STAT_HITS, STAT_MISSES, STAT_BYTES_LO, STAT_BYTES_HI, STAT_PREFETCHES, STAT_PREFETCH_HITS,
       STAT_PLANNED };

/* On a target whose memory levels have DMA (siracusa-like: the experts in L3, the pool in L2), a load goes
 * through the DMA API the tiled code uses (dma.c: start, then wait before the data is used) on a channel of
 * its own, between the levels the build defines; a prefetch only starts it. Elsewhere it is a memcpy. */
#ifdef SLMC_EXPERT_DMA_SRC
#define EXPERT_DMA_CHANNEL 4
void slmc_dma_start(int channel, void *dst, int dst_level, const void *src, int src_level, int rows, int row_bytes,
                    int dst_stride, int src_stride);
void slmc_dma_wait(int channel);
#define COPY(d, s, n) slmc_dma_start(EXPERT_DMA_CHANNEL, (d), SLMC_EXPERT_DMA_DST, (s), SLMC_EXPERT_DMA_SRC, 1, (n), (n), (n))
#define WAIT() slmc_dma_wait(EXPERT_DMA_CHANNEL)
#else
#define COPY(d, s, n) memcpy((d), (s), (size_t)(n))
#define WAIT() ((void)0)
#endif

static uint8_t *load(uint8_t *pool, int32_t *table, int slots, int slot_bytes, int s, int32_t tag,
                     const uint8_t *const *src, const int32_t *bytes, int parts) {
    int32_t *stat = table + 3 * slots;
    uint8_t *dst = pool + (size_t)s * slot_bytes;
    uint32_t total = 0;
    for (int p = 0; p < parts; p++) {
        COPY(dst + total, src[p], bytes[p]);
        total += ((uint32_t)bytes[p] + 3u) & ~3u;
    }
    table[s] = tag + 1;
    uint32_t lo = (uint32_t)stat[STAT_BYTES_LO], nlo = lo + total;
    stat[STAT_BYTES_LO] = (int32_t)nlo;
    if (nlo < lo) stat[STAT_BYTES_HI]++;
    return dst;
}

/* The least recently used slot without a prefetch mark; any slot if every one has a mark. */
static int victim(const int32_t *table, int slots) {
    const int32_t *used = table + slots, *mark = table + 2 * slots;
    int best = -1;
    for (int s = 0; s < slots; s++)
        if (!mark[s] && (best < 0 || used[s] < used[best])) best = s;
    if (best < 0)
        for (int s = best = 0; s < slots; s++)
            if (used[s] < used[best]) best = s;
    return best;
}

/* Returns the expert's copy. */
const uint8_t *slmc_expert_fetch(uint8_t *pool, int32_t *table, int slots, int slot_bytes, int policy, int32_t tag0,
                                 int32_t e, const uint8_t *const *src, const int32_t *bytes, int parts) {
    int32_t *tags = table, *used = table + slots, *mark = table + 2 * slots, *stat = table + 3 * slots;
    int32_t clock = ++stat[STAT_CLOCK], tag = tag0 + e;
    int hit = -1;
    for (int s = 0; s < slots; s++) {
        if (policy && tags[s] == tag + 1) hit = s;
        if (mark[s] && mark[s] - 1 < tag0) mark[s] = 0;  /* prefetched for an earlier layer: a misprediction */
    }
    if (hit >= 0) {
        if (mark[hit]) {  /* a prefetched copy: its transfer must be done before the data is read */
            WAIT();
            stat[STAT_PREFETCH_HITS]++;
        }
        mark[hit] = 0;
        used[hit] = clock;
        stat[STAT_HITS]++;
        return pool + (size_t)hit * slot_bytes;
    }
    int s = victim(table, slots);
    mark[s] = 0;
    used[s] = clock;
    stat[STAT_MISSES]++;
    const uint8_t *copy = load(pool, table, slots, slot_bytes, s, tag, src, bytes, parts);
    WAIT();  /* a load at use: the core waits for it */
    return copy;
}

/* The predictor's loads (policy 2): the experts plan[p][j] (j < m) of layers first .. first + n_pred - 1, into
 * slots marked for their layer, ahead of use. src[p * parts + q] is part q of layer first + p's expert 0;
 * expert e's part q lies e * bytes[q] further. Marks of an earlier plan end here. */
void slmc_expert_prefetch(uint8_t *pool, int32_t *table, int slots, int slot_bytes, const int32_t *plan, int n_pred,
                          int m, int first, int n_experts, const uint8_t *const *src, const int32_t *bytes, int parts) {
    int32_t *tags = table, *used = table + slots, *mark = table + 2 * slots, *stat = table + 3 * slots;
    const uint8_t *part[8];
    for (int s = 0; s < slots; s++) mark[s] = 0;
    for (int p = 0; p < n_pred; p++) {
        int32_t tag0 = (first + p) * n_experts;
        for (int j = 0; j < m; j++) {
            int32_t e = plan[p * m + j], tag = tag0 + e;
            int s = -1;
            for (int t = 0; t < slots; t++)
                if (tags[t] == tag + 1) s = t;
            if (s < 0) {
                s = victim(table, slots);
                for (int q = 0; q < parts; q++) part[q] = src[p * parts + q] + (size_t)e * (size_t)bytes[q];
                load(pool, table, slots, slot_bytes, s, tag, part, bytes, parts);
                stat[STAT_PREFETCHES]++;
            }
            mark[s] = tag0 + 1;
            stat[STAT_PLANNED]++;
            used[s] = ++stat[STAT_CLOCK];
        }
    }
}
