#include "slmc_kernels.h"

/* -q int8: the int16 cache is [seq_len][kv_dim]; n new rows land at row pos. */
void slmc_kv_write_i16(int16_t *cache, const int16_t *x, int pos, int n, int kv_dim) {
    memcpy(cache + (size_t)pos * kv_dim, x, (size_t)n * kv_dim * sizeof(int16_t));
}
