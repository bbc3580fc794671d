#include "slmc_kernels.h"
#include <arm_acle.h>

/* requantize.c for Cortex-M33 (DSP extension and FPv5), the same bytes: y = saturate(round_half_even((float)(acc +
 * bias) * multiplier) + zp) with the same fp32 convert and multiply, then VCVTN (round to nearest, ties to even,
 * saturating; NaN gives 0, so zp, as slmc_quant_round gives it), SSAT to 16 bits, + zp and USAT/SSAT to 8 bits. Rounding
 * before clamping equals requantize.c's clamping in float before rounding: the bounds lo - zp and hi - zp are
 * integers, which rounding keeps, and rounding is monotonic. 13 instructions per output instead of 24. */

static inline int32_t rne(float v) {
    float r;
    __asm__("vcvtn.s32.f32 %0, %1" : "=t"(r) : "t"(v));
    int32_t i;
    memcpy(&i, &r, 4);
    return i;
}

void slmc_requantize_dsp(void *y, int t, const int32_t *acc, const float *m, int nm, const int32_t *b, int nb,
                         const void *zp, size_t outer, size_t ch, size_t inner) {
    int32_t z = (int32_t)slmc_ldt(zp, t, 0);
    for (size_t o = 0; o < outer; o++)
        for (size_t c = 0; c < ch; c++) {
            size_t at = (o * ch + c) * inner;
            float mc = m[nm > 1 ? c : 0];
            uint32_t bc = b ? (uint32_t)b[nb > 1 ? c : 0] : 0;
            const int32_t *a = acc + at;
            if (t == 2) {
                int8_t *yp = (int8_t *)y + at;
                for (size_t i = 0; i < inner; i++)
                    yp[i] = (int8_t)__ssat(__ssat(rne((float)(int32_t)((uint32_t)a[i] + bc) * mc), 16) + z, 8);
            } else {
                uint8_t *yp = (uint8_t *)y + at;
                for (size_t i = 0; i < inner; i++)
                    yp[i] = (uint8_t)__usat(__ssat(rne((float)(int32_t)((uint32_t)a[i] + bc) * mc), 16) + z, 8);
            }
        }
}
