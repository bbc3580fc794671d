#include "slmc_kernels.h"

/* -q int8 multiplier (embedding, residual, logits): out = (x * m + 2^(shift-1)) >> shift, saturated. */
void slmc_scale_i(int32_t *out, const int32_t *x, int count, int64_t m, int shift) {
    for (int i = 0; i < count; i++) out[i] = slmc_sat32(slmc_rshift_round((int64_t)x[i] * m, shift));
}
