#include "slmc_kernels.h"

/* com.microsoft QLinearAdd on 8-bit data of one shape, as onnxruntime's AVX2 kernel (MlasQLinearAddKernelAvx2,
 * the one x86-64 hosts with AVX2 run) computes it: with p = {scale_a / scale_c, scale_b / scale_c,
 * zp_c - (p0 * zp_a + p1 * zp_b)} (fp32, computed when the model is compiled), y = saturate(round_half_even(
 * fma(a, p0, fma(b, p1, p2)))). t: 2 int8, 3 uint8. */

void slmc_qlinear_add(void *y, const void *a, const void *b, int t, const float *p, size_t n) {
    int32_t lo = t == 2 ? -128 : 0, hi = t == 2 ? 127 : 255;
    for (size_t i = 0; i < n; i++) {
        float av = (float)slmc_ldt(a, t, i), bv = (float)slmc_ldt(b, t, i);
        int32_t q = slmc_quant_round(slmc_fmaf(av, p[0], slmc_fmaf(bv, p[1], p[2])), 0, lo, hi);
        if (t == 2) ((int8_t *)y)[i] = (int8_t)q;
        else ((uint8_t *)y)[i] = (uint8_t)q;
    }
}
