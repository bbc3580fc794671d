#include "slmc_kernels.h"

/* The DMA API the tiled code calls (codegen/tiled.py). A transfer is started on a channel and
 * waited for before its data is used; on a chip with a DMA engine the start programs the engine
 * and returns, so the next tile moves while the cores compute. Here (host and emulators) the copy
 * is a memcpy done at once and waiting is free, so a tiled program computes exactly what the
 * untiled one does. Levels are numbered as in the target's hierarchy (0: the fastest);
 * slmc_dma_bytes[src][dst] counts every byte moved, for `slmc run` and the tests. */
uint64_t slmc_dma_bytes[4][4];

/* rows x row_bytes from src (rows src_stride bytes apart) to dst (rows dst_stride bytes apart) */
void slmc_dma_start(int channel, void *dst, int dst_level, const void *src, int src_level, int rows, int row_bytes,
                    int dst_stride, int src_stride) {
    uint8_t *d = (uint8_t *)dst;
    const uint8_t *s = (const uint8_t *)src;
    (void)channel;
    if (dst_stride == row_bytes && src_stride == row_bytes) {
        memcpy(d, s, (size_t)rows * (size_t)row_bytes);
    } else {
        for (int r = 0; r < rows; r++) memcpy(d + (size_t)r * dst_stride, s + (size_t)r * src_stride, (size_t)row_bytes);
    }
    slmc_dma_bytes[src_level][dst_level] += (uint64_t)rows * (uint64_t)row_bytes;
}

void slmc_dma_wait(int channel) {
    (void)channel;
}
