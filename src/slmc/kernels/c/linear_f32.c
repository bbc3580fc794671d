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
            out[(size_t)s * m + i] = slmc_dot_f32(wr, x + (size_t)s * k, k) + bias;
        }
    }
}
