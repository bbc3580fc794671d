#include "slmc_kernels.h"

/* Deeploy's iHardswish: y = x * (clip(x + three, 0, six) * one_over_six). */

void slmc_ihardswish(void *y, int yt, const void *x, int xt, int32_t n, int64_t one_over_six, int64_t three,
                     int64_t six) {
    for (int32_t i = 0; i < n; i++) {
        int64_t v = slmc_ldt(x, xt, i), c = v + three;
        c = c < 0 ? 0 : c > six ? six : c;
        slmc_stt(y, yt, i, v * (c * one_over_six));
    }
}
