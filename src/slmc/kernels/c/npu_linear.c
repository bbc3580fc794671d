#include "slmc_kernels.h"

/* The NPU's matrix product (kernels/npu.py), as a bit-exact functional model. Weights come in the
 * NPU's layout (pack_npu): for each output row, `bits` bit-planes of ceil(k/8) bytes, weight j at
 * bit j%8 of byte j/8. Activations are int8. One pass per bit-plane,
 *     x . w = sum_{p < bits-1} 2^p (x . w_p) - 2^(bits-1) (x . w_{bits-1}),
 * gives the exact int32 of each q8 group, then rescaled by the weight's and the activation's group
 * scales and accumulated in float in group order exactly as linear_q8.c does: with 8-bit weights
 * the outputs are bit-identical to the cluster's. Its instruction count on an emulator says
 * nothing about the NPU's speed: time and energy come from the cost model. */
void slmc_npu_linear_q8(float *out, const int8_t *xq, const float *xs, const uint8_t *wp, const float *ws,
                        const float *b, int n, int k, int m, int group, int bits) {
    int ng = k / group, kb = (k + 7) / 8;
    for (int i = 0; i < m; i++) {
        const uint8_t *wr = wp + (size_t)i * bits * kb;
        const float *wsr = ws + (size_t)i * ng;
        for (int s = 0; s < n; s++) {
            const int8_t *xr = xq + (size_t)s * k;
            const float *xsr = xs + (size_t)s * ng;
            float val = 0.0f;
            for (int g = 0; g < ng; g++) {
                int32_t ival = 0;
                for (int p = 0; p < bits; p++) {
                    const uint8_t *plane = wr + (size_t)p * kb;
                    int32_t part = 0;
                    for (int j = g * group; j < (g + 1) * group; j++)
                        if ((plane[j >> 3] >> (j & 7)) & 1) part += xr[j];
                    ival += p == bits - 1 ? -(part * (1 << p)) : part * (1 << p);
                }
                val += ((float)ival) * wsr[g] * xsr[g];
            }
            out[(size_t)s * m + i] = val + (b ? b[i] : 0.0f);
        }
    }
}
