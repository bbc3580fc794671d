#include "slmc_kernels.h"

/* linear_swiglu_f32.c for the host-native target: out[s][i] = silu(gate[s][i]) * (w[i] . x[s] (+ b[i])), the dot
 * products eight weight rows at a time by linear_f32_native.c (AVX-512 / AVX2 + FMA chosen at build time; not
 * bit-identical to linear_swiglu_f32.c, see there). out may occupy exactly the bytes of gate: out[s][i] is
 * written only after gate[s][i] is read. */
void slmc_dotn_f32_native(float *d, const float *w, const float *x, int k, int r);

void slmc_linear_swiglu_f32_native(float *out, const float *x, const float *w, const float *b, const float *gate,
                                   int n, int k, int m) {
    float d[8];
    for (int i = 0; i < m; i += 8) {
        int r = m - i < 8 ? m - i : 8;
        for (int s = 0; s < n; s++) {
            slmc_dotn_f32_native(d, w + (size_t)i * k, x + (size_t)s * k, k, r);
            for (int t = 0; t < r; t++) {
                float v = gate[(size_t)s * m + i + t];
                v = v * (1.0f / (1.0f + expf(-v)));
                out[(size_t)s * m + i + t] = v * (d[t] + (b ? b[i + t] : 0.0f));
            }
        }
    }
}
