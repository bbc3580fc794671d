#include "slmc_kernels.h"

/* out[s][i] = silu(gate[s][i]) * (sum_j x[s][j] * w[i][j] (+ b[i])): the FFN's up projection (w3) with the
 * SwiGLU gate in its epilogue, so the projection's output never goes to memory. The dot product is
 * linear_f32.c's loop, accumulators and summation order unchanged, and the epilogue is swiglu_f32.c's
 * arithmetic, so the result is bit-identical to linear_f32 followed by swiglu_f32.
 * `out` may occupy exactly the bytes of `gate`: out[s][i] is written only after gate[s][i] is read, and
 * nothing reads gate[s][i] after that. */
void slmc_linear_swiglu_f32(float *out, const float *x, const float *w, const float *b, const float *gate,
                            int n, int k, int m) {
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
            float u = (((a0 + a4) + (a1 + a5)) + ((a2 + a6) + (a3 + a7))) + bias;
            float v = gate[(size_t)s * m + i];
            v = v * (1.0f / (1.0f + expf(-v)));
            out[(size_t)s * m + i] = v * u;
        }
    }
}
