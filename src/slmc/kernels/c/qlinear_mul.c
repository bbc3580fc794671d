#include "slmc_kernels.h"

/* com.microsoft QLinearMul on 8-bit data of one shape, as onnxruntime's SSE2 kernel (MlasQLinearMulKernel, the
 * one x86-64 runs) computes it: the exact int32 product (a - a_zp) * (b - b_zp), converted to float, times
 * ratio = a_scale * b_scale / c_scale, plus c_zp (two roundings, no fused multiply-add), converted to int32
 * rounding half to even (a value beyond int32 gives INT32_MIN, as cvtps2dq does), saturated. t: 2 int8, 3 uint8. */

void slmc_qlinear_mul(void *y, const void *a, const void *b, int t, const void *az, const void *bz,
                      const float *ratio, const void *cz, size_t n) {
    int32_t za = (int32_t)slmc_ldt(az, t, 0), zb = (int32_t)slmc_ldt(bz, t, 0);
    float r = ratio[0];
    float zc = (float)slmc_ldt(cz, t, 0);
    for (size_t i = 0; i < n; i++) {
        int32_t p = ((int32_t)slmc_ldt(a, t, i) - za) * ((int32_t)slmc_ldt(b, t, i) - zb);
        volatile float m = (float)p * r;  /* (rounded before the add, whatever -ffp-contract says) */
        slmc_store_q8(y, t, i, slmc_round_even(m + zc));
    }
}
