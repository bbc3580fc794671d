#include "slmc_kernels.h"

/* -q int8 LayerNorm: x int32 with f_x fractional bits, w int16 (f_w), b int32 in the output's format,
 * out int16 (f_out): mean = sum(x) / dim rounded, d = x - mean, sd = isqrt(sum(d^2) / dim + eps) in x's
 * format, out = (d * w * 2^f_out) / (sd * 2^f_w) rounded, plus b. */
void slmc_layernorm_i(int16_t *out, const int32_t *x, const int16_t *w, const int32_t *b, int n, int dim,
                      int64_t eps, int f_w, int f_out) {
    for (int i = 0; i < n; i++) {
        const int32_t *xr = x + (size_t)i * dim;
        int64_t sum = 0;
        for (int j = 0; j < dim; j++) sum += xr[j];
        int64_t mean = slmc_rdiv(sum, dim);
        uint64_t ss = 0;
        for (int j = 0; j < dim; j++) {
            int64_t d = (int64_t)xr[j] - mean;
            ss += (uint64_t)(d * d);
        }
        int64_t sd = (int64_t)slmc_isqrt(ss / (uint64_t)dim + (uint64_t)eps);
        if (sd < 1) sd = 1;
        int64_t den = sd * ((int64_t)1 << f_w);
        for (int j = 0; j < dim; j++)
            out[(size_t)i * dim + j] =
                slmc_sat16(slmc_rdiv(((int64_t)xr[j] - mean) * w[j] * ((int64_t)1 << f_out), den) + b[j]);
    }
}
