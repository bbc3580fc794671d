#include "slmc_kernels.h"

/* float32 -> 8 bits as onnxruntime's QLinearAveragePool quantizes its float averages (qlinear_pool.cc's
 * quantize_value): the zero point added in float before rounding, y = saturate(nearbyint(x / scale + zp)) (a
 * value beyond int32 gives INT32_MIN, as x86's conversion does). t: 2 int8, 3 uint8. */

void slmc_quantize_after_zp(void *y, int t, const float *x, const float *s, const void *zp, size_t n) {
    int32_t lo = t == 2 ? -128 : 0, hi = t == 2 ? 127 : 255;
    float z = (float)slmc_ldt(zp, t, 0);
    for (size_t i = 0; i < n; i++) {
        float v = x[i] / s[0] + z;
        int32_t q;
        if (!(fabsf(v) < 2147483648.0f)) q = INT32_MIN;
        else if (fabsf(v) < 8388608.0f) {
            float big = v < 0.0f ? -8388608.0f : 8388608.0f;
            q = (int32_t)((v + big) - big);
        } else q = (int32_t)v;
        if (q < lo) q = lo;
        if (q > hi) q = hi;
        if (t == 2) ((int8_t *)y)[i] = (int8_t)q;
        else ((uint8_t *)y)[i] = (uint8_t)q;
    }
}
