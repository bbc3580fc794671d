#include "slmc_kernels.h"

/* int32 accumulators -> 8-bit, as onnxruntime's MlasRequantizeOutput (the output stage of its QLinearConv,
 * QLinearMatMul, QGemm): y = saturate(round_half_even((float)(acc + bias) * multiplier) + zp). One fp32
 * multiply per output; the multiplier (x_scale * w_scale / y_scale, computed in fp32 in ORT's order) and
 * the bias hold one value or one per channel. acc is [outer, ch, inner]; t: 2 int8, 3 uint8. The output may lie
 * over the accumulators (element i is written after acc[i] is read, at a lower or equal address). */

void slmc_requantize(void *y, int t, const int32_t *acc, const float *m, int nm, const int32_t *b, int nb,
                     const void *zp, size_t outer, size_t ch, size_t inner) {
    int32_t z = (int32_t)slmc_ldt(zp, t, 0), lo = t == 2 ? -128 : 0, hi = t == 2 ? 127 : 255;
    for (size_t o = 0; o < outer; o++)
        for (size_t c = 0; c < ch; c++) {
            size_t at = (o * ch + c) * inner;
            float mc = m[nm > 1 ? c : 0];
            int32_t bc = b ? b[nb > 1 ? c : 0] : 0;
            /* one loop per output type: gcc -O2 does not unswitch the test out of the loop */
            if (t == 2)
                for (size_t i = 0; i < inner; i++)
                    ((int8_t *)y)[at + i] = (int8_t)slmc_quant_round((float)(int32_t)((uint32_t)acc[at + i] + (uint32_t)bc) * mc, z, lo, hi);
            else
                for (size_t i = 0; i < inner; i++)
                    ((uint8_t *)y)[at + i] = (uint8_t)slmc_quant_round((float)(int32_t)((uint32_t)acc[at + i] + (uint32_t)bc) * mc, z, lo, hi);
        }
}
