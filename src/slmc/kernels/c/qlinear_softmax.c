#include "slmc_kernels.h"

/* com.microsoft QLinearSoftmax along the last axis, as onnxruntime 1.32's CPU kernel computes it (qlinear_softmax.cc,
 * as its x86-64 wheel's machine code has it): table[256] (fp32, built by the compiler as onnxruntime builds it)
 * holds exp((i - 255 + shift) * x_scale); a row is looked up shifted so that its maximum lands on the last entry,
 * the entries are summed in fp32 in order, and y = saturate(nearbyint(double(e) * yscale / double(sum)) + y_zp),
 * yscale = floor(1 / y_scale): the quotient and its rounding in double (mulsd, divsd, nearbyint). A float quotient
 * differs from it where it lands within an ulp of a .5. t: 2 int8, 3 uint8. */

/* nearbyint (half to even) of q >= 0, the fraction exact in double; past 2^50 (a y_scale near 0) any value
 * saturates the same */
static int64_t round_even_pos(double q) {
    if (!(q < 1125899906842624.0)) return (int64_t)1 << 50;
    int64_t i = (int64_t)q;
    double f = q - (double)i;
    return i + (f > 0.5 || (f == 0.5 && (i & 1)));
}

/* nearbyint(double(e) * ys / double(s)): decided in float where the float quotient (two roundings, within
 * 2^-22 of it relative) is more than 2^-19 of itself from a .5, so that both lie on the same side (an FPU with
 * single precision only, the M33's, pays a soft-float double division elsewhere: rarely) */
static int64_t quotient(float e, float ysf, double ys, float s) {
    float q = (e * ysf) / s;
    if (q < 4194304.0f) {
        int32_t i = (int32_t)q;
        float d = q - (float)i - 0.5f, margin = q * 1.9073486e-6f + 1e-30f;  /* 2^-19 */
        if (d > margin) return i + 1;
        if (d < -margin) return i;
    }
    return round_even_pos((double)e * ys / (double)s);
}

void slmc_qlinear_softmax(void *y, const void *x, int t, const float *table, const float *yscale, const void *yz,
                          size_t rows, size_t d) {
    int32_t z = (int32_t)slmc_ldt(yz, t, 0);
    float ysf = yscale[0];
    double ys = (double)ysf;
    for (size_t r = 0; r < rows; r++) {
        size_t at = r * d;
        int32_t m = (int32_t)slmc_ldt(x, t, at);
        for (size_t i = 1; i < d; i++) {
            int32_t v = (int32_t)slmc_ldt(x, t, at + i);
            if (v > m) m = v;
        }
        int32_t shift = t == 2 ? 127 - m : 255 - m;
        float sum = 0.0f;
        for (size_t i = 0; i < d; i++) sum += table[((int32_t)slmc_ldt(x, t, at + i) + shift) & 255];
        for (size_t i = 0; i < d; i++) {
            float e = table[((int32_t)slmc_ldt(x, t, at + i) + shift) & 255];
            slmc_store_q8(y, t, at + i, quotient(e, ysf, ys, sum) + z);  /* e <= sum: the quotient <= ys */
        }
    }
}
