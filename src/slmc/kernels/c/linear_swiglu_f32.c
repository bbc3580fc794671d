#include "slmc_kernels.h"

/* out[s][i] = silu(gate[s][i]) * (sum_j x[s][j] * w[i][j] (+ b[i])): the FFN's up projection (w3) with the
 * SwiGLU gate in its epilogue, so the projection's output never goes to memory. The dot product is
 * linear_f32.c's (slmc_dot_f32), and the epilogue is swiglu_f32.c's arithmetic, so the result is
 * bit-identical to linear_f32 followed by swiglu_f32.
 * `out` may occupy exactly the bytes of `gate`: out[s][i] is written only after gate[s][i] is read, and
 * nothing reads gate[s][i] after that. */
void slmc_linear_swiglu_f32(float *out, const float *x, const float *w, const float *b, const float *gate,
                            int n, int k, int m) {
    for (int i = 0; i < m; i++) {
        const float *wr = w + (size_t)i * k;
        float bias = b ? b[i] : 0.0f;
        for (int s = 0; s < n; s++) {
            float u = slmc_dot_f32(wr, x + (size_t)s * k, k) + bias;
            float v = gate[(size_t)s * m + i];
            v = v * (1.0f / (1.0f + expf(-v)));
            out[(size_t)s * m + i] = v * u;
        }
    }
}
