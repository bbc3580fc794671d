/* The DMA staging HAL (codegen/staging.py) on the host and the emulators: the copy is done at once, and
 * waiting is free. The copy is this file's own word loop, not memcpy: the instruction counters leave out
 * what runs in this object (toolchain/count.py, "stage"), as the RP2350's DMA engine would move the bytes
 * without the cores (slmc_stage_pico.c). slmc_stage_bytes counts every byte copied. */
#include <stdint.h>

uint64_t slmc_stage_bytes;

/* no loop-to-memcpy rewrite: the instructions must stay in this object */
__attribute__((noinline, optimize("no-tree-loop-distribute-patterns")))
void slmc_stage_start(int channel, void *dst, const void *src, uint32_t nbytes) {
    uint32_t *d = (uint32_t *)dst;
    const uint32_t *s = (const uint32_t *)src;
    (void)channel;
    for (uint32_t i = 0; i < nbytes / 4; i++) d[i] = s[i];
    slmc_stage_bytes += nbytes;
}

__attribute__((noinline)) void slmc_stage_wait(int channel) {
    (void)channel;
}
