#include "slmc_kernels.h"

/* ONNX QuantizeLinear, float32 -> an integer type t (cast.c's codes: 2 i8, 3 u8, 4 i16, 5 u16):
 * y = saturate(round_half_even(x / scale) + zp), as onnxruntime's MlasQuantizeLinear divides (not
 * multiplies by the reciprocal). x is [outer, ch, inner]; the scale (sm) and the zero point (zm) each hold
 * one value (mode 0), one per element of the quantized axis (1), or one per element of x (2: blocked
 * quantization, gathered). zp may be NULL (zero). [lo, hi]: the range of t. */

void slmc_quantize_linear(void *y, int t, const float *x, const float *s, int sm, const void *zp, int zm,
                          size_t outer, size_t ch, size_t inner, int32_t lo, int32_t hi) {
    for (size_t o = 0; o < outer; o++)
        for (size_t c = 0; c < ch; c++) {
            size_t at = (o * ch + c) * inner;
            for (size_t i = 0; i < inner; i++) {
                size_t e = at + i, ks = sm == 2 ? e : sm == 1 ? c : 0, kz = zm == 2 ? e : zm == 1 ? c : 0;
                int32_t z = zp ? (int32_t)slmc_ldt(zp, t, kz) : 0;
                slmc_stt(y, t, e, slmc_quant_round(x[e] / s[ks], z, lo, hi));
            }
        }
}
