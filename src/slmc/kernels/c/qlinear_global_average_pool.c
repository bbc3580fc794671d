#include "slmc_kernels.h"

/* com.microsoft QLinearGlobalAveragePool (channels first), as MlasQLinearGlobalAveragePoolNchw: each plane's
 * int32 sum less x_zp * size, times the fp32 multiplier x_scale / (y_scale * size), rounded half to even,
 * plus y_zp, saturated. t: 2 int8, 3 uint8. */

void slmc_qlinear_global_average_pool(void *y, const void *x, int t, const float *m, const void *xz, const void *yz,
                                      size_t planes, size_t size) {
    int32_t zx = (int32_t)slmc_ldt(xz, t, 0), zy = (int32_t)slmc_ldt(yz, t, 0);
    int32_t lo = t == 2 ? -128 : 0, hi = t == 2 ? 127 : 255;
    for (size_t p = 0; p < planes; p++) {
        int32_t acc = -zx * (int32_t)size;
        for (size_t i = 0; i < size; i++) acc += (int32_t)slmc_ldt(x, t, p * size + i);
        int32_t q = slmc_quant_round((float)acc * m[0], zy, lo, hi);
        if (t == 2) ((int8_t *)y)[p] = (int8_t)q;
        else ((uint8_t *)y)[p] = (uint8_t)q;
    }
}
