#include "slmc_kernels.h"

void slmc_link_reduce_i64(int64_t *buf, int64_t *tmp, size_t count);
int slmc_link_broadcast(void *buf, size_t bytes);
void slmc_link_fail(const char *what);

/* -q int8: the int64 partial sums of Wo's and W2's products (linear_i8_partial) added over the chips up
 * the reduction tree, the total broadcast down it; integer sums, so every chip gets one chip's value
 * bit for bit. A chip with no share passes in == NULL and adds zeros. tmp: one child's message. */
void slmc_allreduce_sum_i64(int64_t *out, const int64_t *in, int64_t *tmp, int count) {
    if (in) memcpy(out, in, (size_t)count * sizeof(int64_t));
    else memset(out, 0, (size_t)count * sizeof(int64_t));
    slmc_link_reduce_i64(out, tmp, (size_t)count);
    if (!slmc_link_broadcast(out, (size_t)count * sizeof(int64_t))) slmc_link_fail("allreduce_sum");
}
