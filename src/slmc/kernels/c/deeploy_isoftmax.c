#include "slmc_kernels.h"

/* Deeploy's iSoftmax (I-BERT) over rows of `width`: t = x - max; z = clip(-trunc(t / log2), 0, 31);
 * p = t + z * log2; e = (A * (p + B)^2 + C) >> z; y = trunc(e * (n_levels - 1) / sum(e)).
 * The exponentials are computed twice (sum, then output) instead of kept in scratch. */

static int64_t exp_term(int64_t t, int64_t a, int64_t b, int64_t c, int64_t log2) {
    int64_t z = -(t / log2);
    z = z < 0 ? 0 : z > 31 ? 31 : z;
    int64_t p = t + z * log2;
    return slmc_shr(a * (p + b) * (p + b) + c, z);
}

void slmc_isoftmax(void *y, int yt, const void *x, int xt, int32_t rows, int32_t width, int64_t coeff_a,
                   int64_t coeff_b, int64_t coeff_c, int64_t log2, int64_t n_levels) {
    for (int32_t r = 0; r < rows; r++) {
        size_t row = (size_t)r * width;
        int64_t max = slmc_ldt(x, xt, row), sum = 0;
        for (int32_t j = 1; j < width; j++) if (slmc_ldt(x, xt, row + j) > max) max = slmc_ldt(x, xt, row + j);
        for (int32_t j = 0; j < width; j++) sum += exp_term(slmc_ldt(x, xt, row + j) - max, coeff_a, coeff_b, coeff_c, log2);
        for (int32_t j = 0; j < width; j++) {
            int64_t e = exp_term(slmc_ldt(x, xt, row + j) - max, coeff_a, coeff_b, coeff_c, log2);
            slmc_stt(y, yt, row + j, sum ? e * (n_levels - 1) / sum : 0);
        }
    }
}
