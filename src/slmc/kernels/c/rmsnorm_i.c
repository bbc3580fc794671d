#include "slmc_kernels.h"

/* -q int8 RMSNorm: x int32 with f_x fractional bits, w int16 (f_w), out int16 or int32 (out_bits; f_out):
 * rms = isqrt(sum(x^2) / dim + eps) in x's format, out = (x * w * 2^f_out) / (rms * 2^f_w) rounded.
 * n rows of dim features (qk-norm per head: n * heads rows of head_dim, the same weight for each);
 * int32 out: a post-norm's output on its way to the residual stream, divided at f_out - up fractional bits
 * (so x * w * 2^(f_out - up) fits int64) and shifted up by `up`. */
void slmc_rmsnorm_i(void *out, const int32_t *x, const int16_t *w, int n, int dim, int64_t eps, int f_w,
                    int f_out, int up, int out_bits) {
    for (int i = 0; i < n; i++) {
        const int32_t *xr = x + (size_t)i * dim;
        uint64_t ss = 0;
        for (int j = 0; j < dim; j++) ss += (uint64_t)((int64_t)xr[j] * xr[j]);
        int64_t rms = (int64_t)slmc_isqrt(ss / (uint64_t)dim + (uint64_t)eps);
        if (rms < 1) rms = 1;
        int64_t den = rms * ((int64_t)1 << f_w);
        for (int j = 0; j < dim; j++)
            slmc_i8_store(out, (size_t)i * dim + j,
                          slmc_rdiv((int64_t)xr[j] * w[j] * ((int64_t)1 << (f_out - up)), den) * ((int64_t)1 << up), 0,
                          out_bits);
    }
}
