#include "slmc_kernels.h"

/* -q int8: the int32 residual (f_in fractional bits) as int16 (f_out) for a projection that reads it with no
 * norm between (OLMo 2's post-norm block): a rounding right shift, or a left shift, saturated. */
void slmc_narrow_i(int16_t *out, const int32_t *x, int count, int f_in, int f_out) {
    for (int i = 0; i < count; i++)
        out[i] = slmc_sat16(f_in >= f_out ? slmc_rshift_round(x[i], f_in - f_out)
                                          : (int64_t)x[i] * ((int64_t)1 << (f_out - f_in)));
}
