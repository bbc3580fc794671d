#include "slmc_kernels.h"

/* -q int8: (v + 2^(shift-1)) >> shift saturated to int32: the end of linear_i8.c, after the chips'
 * partial sums were added (linear_i8_partial.c, allreduce_sum). */
void slmc_requant_i64(int32_t *out, const int64_t *in, int count, int shift) {
    for (int i = 0; i < count; i++) out[i] = slmc_sat32(slmc_rshift_round(in[i], shift));
}
