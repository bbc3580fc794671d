#include "slmc_kernels.h"

/* Deeploy's ITAPartialMax: ITAMax streamed over groups of `group` columns, as ITA computes it. A
 * running maximum; when a group raises it, the running sum (taken against the old maximum) is
 * shifted right by (new - old + 16) >> 5 before the group's terms are added. Numerator
 * (n_levels / 2 - 1) * 256; the outputs use the row's final maximum. */

void slmc_itapartialmax(void *y, int yt, const void *x, int xt, int32_t rows, int32_t width, int32_t group,
                        int64_t n_levels) {
    for (int32_t r = 0; r < rows; r++) {
        size_t row = (size_t)r * width;
        int64_t max = 0, sum = 0;
        for (int32_t g = 0; g < width; g += group) {
            int64_t gmax = slmc_ldt(x, xt, row + g);
            for (int32_t j = 1; j < group; j++) if (slmc_ldt(x, xt, row + g + j) > gmax) gmax = slmc_ldt(x, xt, row + g + j);
            if (g == 0 || gmax > max) {
                if (g > 0) sum = slmc_shr(sum, slmc_shr(gmax - max + 16, 5));
                max = gmax;
            }
            for (int32_t j = 0; j < group; j++) sum += slmc_shr(256, slmc_shr(max - slmc_ldt(x, xt, row + g + j) + 16, 5));
        }
        int64_t inv = (n_levels / 2 - 1) * 256 / sum;
        for (int32_t j = 0; j < width; j++) slmc_stt(y, yt, row + j, slmc_shr(inv, slmc_shr(max - slmc_ldt(x, xt, row + j) + 16, 5)));
    }
}
