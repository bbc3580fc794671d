#include "slmc_kernels.h"

/* The cache is [seq_len][kv_dim] (llama2.c's layout): n new rows land at row pos. */
void slmc_kv_write_f32(float *cache, const float *x, int pos, int n, int kv_dim) {
    memcpy(cache + (size_t)pos * kv_dim, x, (size_t)n * kv_dim * sizeof(float));
}
