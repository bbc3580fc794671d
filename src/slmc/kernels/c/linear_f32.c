#include "slmc_kernels.h"

/* out[s][i] = sum_j x[s][j] * w[i][j] (+ b[i]); w is (m, k) row-major like torch.nn.Linear.
 * Weight rows in the outer loop: each row is read from flash once for all n tokens of a prompt.
 * Eight partial sums (two SSE vectors after gcc -O2 SLP-vectorizes them) break the add latency chain;
 * the summation order differs from llama2.c's. */
void slmc_linear_f32(float *out, const float *x, const float *w, const float *b, int n, int k, int m) {
    for (int i = 0; i < m; i++) {
        const float *wr = w + (size_t)i * k;
        float bias = b ? b[i] : 0.0f;
        for (int s = 0; s < n; s++) {
            const float *xr = x + (size_t)s * k;
            float a0 = 0.0f, a1 = 0.0f, a2 = 0.0f, a3 = 0.0f, a4 = 0.0f, a5 = 0.0f, a6 = 0.0f, a7 = 0.0f;
            int j = 0;
            for (; j + 8 <= k; j += 8) {
                a0 += wr[j] * xr[j];
                a1 += wr[j + 1] * xr[j + 1];
                a2 += wr[j + 2] * xr[j + 2];
                a3 += wr[j + 3] * xr[j + 3];
                a4 += wr[j + 4] * xr[j + 4];
                a5 += wr[j + 5] * xr[j + 5];
                a6 += wr[j + 6] * xr[j + 6];
                a7 += wr[j + 7] * xr[j + 7];
            }
            for (; j < k; j++) a0 += wr[j] * xr[j];
            out[(size_t)s * m + i] = (((a0 + a4) + (a1 + a5)) + ((a2 + a6) + (a3 + a7))) + bias;
        }
    }
}
