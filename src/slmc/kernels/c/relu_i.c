#include "slmc_kernels.h"

/* -q int8 ReLU: g int32 with f_in fractional bits -> int16 with f_out, rounded (or shifted left). */
void slmc_relu_i(int16_t *out, const int32_t *g, int count, int f_in, int f_out) {
    for (int i = 0; i < count; i++) {
        int64_t v = g[i] > 0 ? g[i] : 0;
        out[i] = slmc_sat16(f_in >= f_out ? slmc_rshift_round(v, f_in - f_out) : v << (f_out - f_in));
    }
}
