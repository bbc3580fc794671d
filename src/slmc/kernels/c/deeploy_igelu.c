#include "slmc_kernels.h"

/* Deeploy's iGELU (I-BERT's second-order polynomial), b <= 0:
 * q = min(|x|, -b); L = sign(x) * (one - (q + b)^2); y = x * ((one + L) >> 1). */

void slmc_igelu(void *y, int yt, const void *x, int xt, int32_t n, int64_t b, int64_t one) {
    for (int32_t i = 0; i < n; i++) {
        int64_t v = slmc_ldt(x, xt, i), q = v < 0 ? -v : v;
        if (q > -b) q = -b;
        int64_t l = (one - (q + b) * (q + b)) * (v > 0 ? 1 : v < 0 ? -1 : 0);
        slmc_stt(y, yt, i, v * slmc_shr(one + l, 1));
    }
}
