#include "slmc_kernels.h"

/* runq.c's matmul: an exact int32 dot product per group, rescaled by the weight's and the
 * activation's scales, accumulated in float in group order.
 * The body is instantiated for each common group size so the group loop has a constant trip
 * count: gcc -O2 then vectorizes the int8 dot product (it does not for a run-time count). */
#if defined(__GNUC__)
#define SLMC_ALWAYS_INLINE static inline __attribute__((always_inline))
#else
#define SLMC_ALWAYS_INLINE static inline
#endif

SLMC_ALWAYS_INLINE void linear_q8_body(float *out, const int8_t *xq, const float *xs, const int8_t *wq,
                                       const float *ws, const float *b, int n, int k, int m, const int group) {
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

void slmc_linear_q8(float *out, const int8_t *xq, const float *xs, const int8_t *wq, const float *ws,
                    const float *b, int n, int k, int m, int group) {
    switch (group) {
    case 64: linear_q8_body(out, xq, xs, wq, ws, b, n, k, m, 64); break;
    case 32: linear_q8_body(out, xq, xs, wq, ws, b, n, k, m, 32); break;
    case 16: linear_q8_body(out, xq, xs, wq, ws, b, n, k, m, 16); break;
    default: linear_q8_body(out, xq, xs, wq, ws, b, n, k, m, group); break;
    }
}
