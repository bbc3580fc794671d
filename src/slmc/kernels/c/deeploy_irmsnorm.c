#include "slmc_kernels.h"

/* Deeploy's iRMSNorm over rows of `width`, weight w (one per feature), D = 2^shift:
 * sd = isqrt(sum(x^2) / width + 1); y = clip(trunc(x * w / sd) >> shift, lo, hi). */


void slmc_irmsnorm(void *y, int yt, const void *x, int xt, const void *w, int wt, int32_t rows, int32_t width,
                   int shift, int32_t lo, int32_t hi) {
    for (int32_t r = 0; r < rows; r++) {
        size_t row = (size_t)r * width;
        int64_t ss = 0;
        for (int32_t j = 0; j < width; j++) ss += slmc_ldt(x, xt, row + j) * slmc_ldt(x, xt, row + j);
        int64_t sd = slmc_isqrt64(ss / width + 1);
        for (int32_t j = 0; j < width; j++) {
            int64_t v = slmc_shr(slmc_ldt(x, xt, row + j) * slmc_ldt(w, wt, j) / sd, shift);
            slmc_stt(y, yt, row + j, v < lo ? lo : v > hi ? hi : v);
        }
    }
}
