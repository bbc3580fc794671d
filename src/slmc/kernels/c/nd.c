#include "slmc_kernels.h"

/* The multi-index walk every strided kernel shares. idx walks dims 0..dims-1 of shape (last
 * fastest); off[k] follows operand k, whose strides (in elements) are str[k * ld + d]. Returns 0
 * after the last index (and at once when dims is 0: a single position). Strides may be 0
 * (broadcast) or negative (reversed slices). */
int slmc_nd_next(int32_t *idx, const int32_t *shape, int dims, ptrdiff_t *off, const int32_t *str, int ld, int nops) {
    for (int d = dims - 1; d >= 0; d--) {
        for (int k = 0; k < nops; k++) off[k] += str[k * ld + d];
        if (++idx[d] < shape[d]) return 1;
        for (int k = 0; k < nops; k++) off[k] -= (ptrdiff_t)str[k * ld + d] * shape[d];
        idx[d] = 0;
    }
    return 0;
}
