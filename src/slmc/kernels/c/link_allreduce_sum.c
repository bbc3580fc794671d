#include "slmc_kernels.h"

void slmc_link_reduce(float *buf, float *tmp, size_t count, int op);
int slmc_link_broadcast(void *buf, size_t bytes);
void slmc_link_fail(const char *what);

/* Sum of every chip's partial output (Wo, W2): added up the reduction tree in the plan's order,
 * then the total is broadcast down it. A chip with no share of the matrix passes in == NULL and
 * adds zeros. tmp: one child's message (count floats). */
void slmc_allreduce_sum_f32(float *out, const float *in, float *tmp, int count) {
    if (in) memcpy(out, in, (size_t)count * sizeof(float));
    else memset(out, 0, (size_t)count * sizeof(float));
    slmc_link_reduce(out, tmp, (size_t)count, 0);
    if (!slmc_link_broadcast(out, (size_t)count * sizeof(float))) slmc_link_fail("allreduce_sum");
}
