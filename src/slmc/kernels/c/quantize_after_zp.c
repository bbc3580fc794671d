#include "slmc_kernels.h"

/* float32 -> 8 bits as onnxruntime's QLinearAveragePool quantizes its float averages (qlinear_pool.cc's
 * quantize_value): the zero point added in float before rounding, y = saturate(nearbyint(x / scale + zp)) (a
 * value beyond int32 gives INT32_MIN, as x86's conversion does). t: 2 int8, 3 uint8. */

void slmc_quantize_after_zp(void *y, int t, const float *x, const float *s, const void *zp, size_t n) {
    float z = (float)slmc_ldt(zp, t, 0);
    for (size_t i = 0; i < n; i++) {
        slmc_store_q8(y, t, i, slmc_round_even(x[i] / s[0] + z));
    }
}
