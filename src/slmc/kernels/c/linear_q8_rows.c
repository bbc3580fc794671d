#include "slmc_kernels.h"

/* linear_q8.c for the n rows of a batched step (slmc compile --batch), bit-identical to it row by row: two
 * token rows at a time share every weight load of a group; the int32 group sums are exact, and the float
 * rescale and accumulation keep runq.c's group order per row. */
void slmc_linear_q8_rows(float *out, const int8_t *xq, const float *xs, const int8_t *wq, const float *ws,
                         const float *b, int n, int k, int m, int group) {
    int ng = k / group;
    for (int i = 0; i < m; i++) {
        const int8_t *wr = wq + (size_t)i * k;
        const float *wsr = ws + (size_t)i * ng;
        float bias = b ? b[i] : 0.0f;
        for (int s = 0; s < n; s += 2) {
            int two = s + 1 < n;
            const int8_t *x0 = xq + (size_t)s * k, *x1 = two ? x0 + k : x0;
            const float *xs0 = xs + (size_t)s * ng, *xs1 = two ? xs0 + ng : xs0;
            float v0 = 0.0f, v1 = 0.0f;
            for (int g = 0; g < ng; g++) {
                int32_t a0 = 0, a1 = 0;
                for (int j = g * group; j < (g + 1) * group; j++) {
                    int32_t wv = wr[j];
                    a0 += (int32_t)x0[j] * wv;
                    a1 += (int32_t)x1[j] * wv;
                }
                v0 += ((float)a0) * wsr[g] * xs0[g];
                v1 += ((float)a1) * wsr[g] * xs1[g];
            }
            out[(size_t)s * m + i] = v0 + bias;
            if (two) out[(size_t)(s + 1) * m + i] = v1 + bias;
        }
    }
}
