#include "slmc_kernels.h"

/* com.microsoft QLinearSoftmax along the last axis, as onnxruntime 1.32's CPU kernel computes it
 * (qlinear_softmax.cc): table[256] (fp32, built by the compiler as onnxruntime builds it) holds
 * exp((i - 255 + shift) * x_scale); a row is looked up shifted so that its maximum lands on the last entry,
 * the entries are summed in fp32 in order, and y = saturate(nearbyint(e * yscale / sum) + y_zp), with
 * yscale = floor(1 / y_scale). t: 2 int8, 3 uint8. */

void slmc_qlinear_softmax(void *y, const void *x, int t, const float *table, const float *yscale, const void *yz,
                          size_t rows, size_t d) {
    int32_t z = (int32_t)slmc_ldt(yz, t, 0);
    float ys = yscale[0];
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
            slmc_store_q8(y, t, at + i, slmc_round_even((e * ys) / sum) + z);  /* (e * ys) / sum: at most ys */
        }
    }
}
