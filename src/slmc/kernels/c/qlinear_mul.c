#include "slmc_kernels.h"

/* com.microsoft QLinearMul on 8-bit data of one shape, as onnxruntime's SSE2 kernel (MlasQLinearMulKernel, the
 * one x86-64 runs) computes it: the exact int32 product (a - a_zp) * (b - b_zp), converted to float, times
 * ratio = a_scale * b_scale / c_scale, plus c_zp (two roundings, no fused multiply-add), converted to int32
 * rounding half to even (a value beyond int32 gives INT32_MIN, as cvtps2dq does), saturated. t: 2 int8, 3 uint8. */

void slmc_qlinear_mul(void *y, const void *a, const void *b, int t, const void *az, const void *bz,
                      const float *ratio, const void *cz, size_t n) {
    int32_t za = (int32_t)slmc_ldt(az, t, 0), zb = (int32_t)slmc_ldt(bz, t, 0);
    int32_t lo = t == 2 ? -128 : 0, hi = t == 2 ? 127 : 255;
    float r = ratio[0];
    float zc = (float)slmc_ldt(cz, t, 0);
    for (size_t i = 0; i < n; i++) {
        int32_t p = ((int32_t)slmc_ldt(a, t, i) - za) * ((int32_t)slmc_ldt(b, t, i) - zb);
        volatile float m = (float)p * r;  /* (rounded before the add, whatever -ffp-contract says) */
        float v = m + zc;
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
