#include "slmc_kernels.h"

/* Deeploy's ITAMax over rows of `width` (ITA's softmax: powers of two instead of exponentials):
 * sh = (max - x + 16) >> 5; y = (((n_levels - 1) * 256) / sum(256 >> sh)) >> sh. */

void slmc_itamax(void *y, int yt, const void *x, int xt, int32_t rows, int32_t width, int64_t n_levels) {
    for (int32_t r = 0; r < rows; r++) {
        size_t row = (size_t)r * width;
        int64_t max = slmc_ldt(x, xt, row), sum = 0;
        for (int32_t j = 1; j < width; j++) if (slmc_ldt(x, xt, row + j) > max) max = slmc_ldt(x, xt, row + j);
        for (int32_t j = 0; j < width; j++) sum += slmc_shr(256, slmc_shr(max - slmc_ldt(x, xt, row + j) + 16, 5));
        int64_t inv = (n_levels - 1) * 256 / sum;
        for (int32_t j = 0; j < width; j++) slmc_stt(y, yt, row + j, slmc_shr(inv, slmc_shr(max - slmc_ldt(x, xt, row + j) + 16, 5)));
    }
}
