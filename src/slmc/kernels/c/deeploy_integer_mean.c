#include "slmc_kernels.h"

/* Deeploy's IntegerMean: the mean over `red` adjacent axes (x viewed as [outer, red, inner]),
 * rounded half away from zero. */

void slmc_integer_mean(void *y, int yt, const void *x, int xt, int32_t outer, int32_t red, int32_t inner) {
    for (int32_t o = 0; o < outer; o++)
        for (int32_t i = 0; i < inner; i++) {
            int64_t sum = 0;
            for (int32_t r = 0; r < red; r++) sum += slmc_ldt(x, xt, ((size_t)o * red + r) * inner + i);
            int64_t q = (2 * (sum < 0 ? -sum : sum) + red) / (2 * (int64_t)red);
            slmc_stt(y, yt, (size_t)o * inner + i, sum < 0 ? -q : q);
        }
}
