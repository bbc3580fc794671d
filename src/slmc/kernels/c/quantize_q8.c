#include "slmc_kernels.h"

/* llama2.c runq.c's quantize(): per group, scale = max|x| / 127, q = roundf(x / scale).
 * An all-zero group gets scale 0 and zeros (runq.c divides by zero there). */
void slmc_quantize_q8(int8_t *q, float *s, const float *x, int n, int k, int group) {
    int ng = k / group;
    for (int r = 0; r < n * ng; r++) {
        const float *xg = x + (size_t)r * group;
        float wmax = 0.0f;
        for (int i = 0; i < group; i++) {
            float v = fabsf(xg[i]);
            if (v > wmax) wmax = v;
        }
        float scale = wmax / 127.0f;
        s[r] = scale;
        for (int i = 0; i < group; i++) q[(size_t)r * group + i] = scale == 0.0f ? 0 : (int8_t)roundf(xg[i] / scale);
    }
}
