#include "slmc_kernels.h"

/* Deeploy's iLayerNorm over rows of `width`, weight w and bias b (one per feature), D = 2^shift:
 * m = trunc(sum(x) / width); t = x - m; sd = isqrt(trunc(sum(t^2) / width) + 1);
 * y = (trunc(t * w / sd) + b) >> shift. */


void slmc_ilayernorm(void *y, int yt, const void *x, int xt, const void *w, int wt, const void *b, int bt,
                     int32_t rows, int32_t width, int shift) {
    for (int32_t r = 0; r < rows; r++) {
        size_t row = (size_t)r * width;
        int64_t sum = 0, ss = 0;
        for (int32_t j = 0; j < width; j++) sum += slmc_ldt(x, xt, row + j);
        int64_t mean = sum / width;
        for (int32_t j = 0; j < width; j++) ss += (slmc_ldt(x, xt, row + j) - mean) * (slmc_ldt(x, xt, row + j) - mean);
        int64_t sd = slmc_isqrt64(ss / width + 1);
        for (int32_t j = 0; j < width; j++)
            slmc_stt(y, yt, row + j, slmc_shr((slmc_ldt(x, xt, row + j) - mean) * slmc_ldt(w, wt, j) / sd + slmc_ldt(b, bt, j), shift));
    }
}
