#include "slmc_kernels.h"

/* out[s][i] = sum_j x[s][j] * w[i][j] (+ b[i]); w is (m, k) row-major like torch.nn.Linear.
 * Weight rows in the outer loop: each row is read from flash once for all n tokens of a prompt.
 * Four partial sums break the add latency chain (the summation order differs from llama2.c's). */
void slmc_linear_f32(float *out, const float *x, const float *w, const float *b, int n, int k, int m) {
    for (int i = 0; i < m; i++) {
        const float *wr = w + (size_t)i * k;
        float bias = b ? b[i] : 0.0f;
        for (int s = 0; s < n; s++) {
            const float *xr = x + (size_t)s * k;
            float a0 = 0.0f, a1 = 0.0f, a2 = 0.0f, a3 = 0.0f;
            int j = 0;
            for (; j + 4 <= k; j += 4) {
                a0 += wr[j] * xr[j];
                a1 += wr[j + 1] * xr[j + 1];
                a2 += wr[j + 2] * xr[j + 2];
                a3 += wr[j + 3] * xr[j + 3];
            }
            for (; j < k; j++) a0 += wr[j] * xr[j];
            out[(size_t)s * m + i] = ((a0 + a1) + (a2 + a3)) + bias;
        }
    }
}
