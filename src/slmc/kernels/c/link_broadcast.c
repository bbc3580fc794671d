#include "slmc_kernels.h"

int slmc_link_broadcast(void *buf, size_t bytes);
void slmc_link_fail(const char *what);

/* Chip 0's tensor (the embedded tokens) to every chip, down the reduction tree; the others pass
 * in == NULL and receive it in out. */
void slmc_broadcast_f32(float *out, const float *in, int count) {
    if (in && in != out) memcpy(out, in, (size_t)count * sizeof(float));
    if (!slmc_link_broadcast(out, (size_t)count * sizeof(float))) slmc_link_fail("broadcast");
}

/* -q int8: chip 0's int32 residual the same way. */
void slmc_broadcast_i32(int32_t *out, const int32_t *in, int count) {
    if (in && in != out) memcpy(out, in, (size_t)count * sizeof(int32_t));
    if (!slmc_link_broadcast(out, (size_t)count * sizeof(int32_t))) slmc_link_fail("broadcast");
}
