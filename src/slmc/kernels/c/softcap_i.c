#include "slmc_kernels.h"

/* -q int8 soft-capping of the int32 logits (Gemma 2): z = (x * m) >> shift is x / cap in Q16, tanh(z) in
 * Q15 from a table over [-range, range) in steps of 2^-step_log2 with linear interpolation, out = tanh *
 * capq >> 15 (capq: cap in the logits' format), in the input's format. */
void slmc_softcap_i(int32_t *out, const int32_t *x, const int32_t *lut, int count, int64_t m, int shift, int64_t capq,
                    int step_log2, int range) {
    for (int i = 0; i < count; i++)
        out[i] = slmc_sat32(slmc_softcap_q(slmc_rshift_round((int64_t)x[i] * m, shift), lut, capq, step_log2, range));
}
