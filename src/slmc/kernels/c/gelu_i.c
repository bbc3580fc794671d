#include "slmc_kernels.h"

/* -q int8 GELU: g int32 with f_in fractional bits; Phi(g) in Q15 from a table over [-range, range) in
 * steps of 2^-step_log2 with linear interpolation (the erf or the tanh form: the table says which);
 * out int16 = (g * Phi) >> (15 + f_in - f_out), rounded. */
void slmc_gelu_i(int16_t *out, const int32_t *g, const int32_t *lut, int count, int f_in, int f_out, int step_log2,
                 int range) {
    int64_t lo = -((int64_t)range << f_in), hi = ((int64_t)range << f_in) - 1;
    for (int i = 0; i < count; i++) {
        int64_t t = g[i] < lo ? lo : g[i] > hi ? hi : g[i];
        int64_t p = (t - lo) << step_log2;
        int32_t idx = (int32_t)(p >> f_in), fr = (int32_t)(((p & (((int64_t)1 << f_in) - 1)) << 8) >> f_in);
        int64_t phi = slmc_lut_interp(lut, idx, fr);
        out[i] = slmc_sat16(slmc_rshift_round((int64_t)g[i] * phi, 15 + f_in - f_out));
    }
}
