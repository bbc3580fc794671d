/* The DMA staging HAL (codegen/staging.py) on the RP2350 with the pico-sdk: each channel number of model.c
 * is a DMA channel claimed at its first use; a copy reads the weights through the XIP window (flash) and
 * writes a staging buffer in SRAM, 32 bits a transfer, while the cores compute. The wait blocks until that
 * channel's copy is done. Both buffers' copies may be in flight at once (they share the QSPI bus).
 * Not yet run on a chip: the emulated builds use slmc_stage.c, which copies at once. */
#include <stdint.h>
#include "hardware/dma.h"

#define SLMC_STAGE_CHANNELS 8   /* 2 buffers x MAX_RUNS (codegen/stage_plan.py) */

static int stage_channel[SLMC_STAGE_CHANNELS];
static uint8_t stage_claimed[SLMC_STAGE_CHANNELS];

void slmc_stage_start(int channel, void *dst, const void *src, uint32_t nbytes) {
    if (!stage_claimed[channel]) {
        stage_channel[channel] = dma_claim_unused_channel(true);
        stage_claimed[channel] = 1;
    }
    int ch = stage_channel[channel];
    dma_channel_config c = dma_channel_get_default_config((uint)ch);
    channel_config_set_transfer_data_size(&c, DMA_SIZE_32);
    channel_config_set_read_increment(&c, true);
    channel_config_set_write_increment(&c, true);
    channel_config_set_dreq(&c, DREQ_FORCE);   /* memory to memory: as fast as the bus allows */
    dma_channel_configure((uint)ch, &c, dst, src, nbytes / 4, true);
}

void slmc_stage_wait(int channel) {
    if (stage_claimed[channel]) dma_channel_wait_for_finish_blocking((uint)stage_channel[channel]);
}
