#include "slmc_kernels.h"

/* runq.c's matmul: an exact int32 dot product per group, rescaled by the weight's and the
 * activation's scales, accumulated in float in group order. */
void slmc_linear_q8(float *out, const int8_t *xq, const float *xs, const int8_t *wq, const float *ws,
                    const float *b, int n, int k, int m, int group) {
    int ng = k / group;
    for (int i = 0; i < m; i++) {
        const int8_t *wr = wq + (size_t)i * k;
        const float *wsr = ws + (size_t)i * ng;
        for (int s = 0; s < n; s++) {
            const int8_t *xr = xq + (size_t)s * k;
            const float *xsr = xs + (size_t)s * ng;
            float val = 0.0f;
            for (int g = 0; g < ng; g++) {
                int32_t ival = 0;
                const int8_t *wg = wr + g * group, *xg = xr + g * group;
                for (int j = 0; j < group; j++) ival += (int32_t)xg[j] * (int32_t)wg[j];
                val += ((float)ival) * wsr[g] * xsr[g];
            }
            out[(size_t)s * m + i] = val + (b ? b[i] : 0.0f);
        }
    }
}
