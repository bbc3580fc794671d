#include "slmc_kernels.h"

/* -q int8 RMSNorm: x int32 with f_x fractional bits, w int16 (f_w), out int16 (f_out):
 * rms = isqrt(sum(x^2) / dim + eps) in x's format, out = (x * w * 2^f_out) / (rms * 2^f_w) rounded. */
void slmc_rmsnorm_i(int16_t *out, const int32_t *x, const int16_t *w, int n, int dim, int64_t eps, int f_w,
                    int f_out) {
    for (int i = 0; i < n; i++) {
        const int32_t *xr = x + (size_t)i * dim;
        uint64_t ss = 0;
        for (int j = 0; j < dim; j++) ss += (uint64_t)((int64_t)xr[j] * xr[j]);
        int64_t rms = (int64_t)slmc_isqrt(ss / (uint64_t)dim + (uint64_t)eps);
        if (rms < 1) rms = 1;
        int64_t den = rms * ((int64_t)1 << f_w);
        for (int j = 0; j < dim; j++)
            out[(size_t)i * dim + j] = slmc_sat16(slmc_rdiv((int64_t)xr[j] * w[j] * ((int64_t)1 << f_out), den));
    }
}
