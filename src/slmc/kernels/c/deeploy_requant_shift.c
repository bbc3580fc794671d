#include "slmc_kernels.h"

/* Deeploy's RequantShift: y = clip((x * mul + add + 2^(s-1)) >> s, lo, hi). The rounding term is not
 * folded into add. mul and add are scalars or one value per channel: element i reads
 * mul[(i / mul_inner) % mul_ch] (so a scalar has mul_ch = mul_inner = 1). */

void slmc_requant_shift(void *y, int yt, const void *x, int xt, int32_t n, const int32_t *mul, int32_t mul_ch,
                        int32_t mul_inner, const int32_t *add, int32_t add_ch, int32_t add_inner, int shift,
                        int32_t lo, int32_t hi) {
    int64_t half = shift > 0 ? (int64_t)1 << (shift - 1) : 0;
    for (int32_t i = 0; i < n; i++) {
        int64_t m = mul_ch == 1 ? mul[0] : mul[(i / mul_inner) % mul_ch];  /* no division for a scalar */
        int64_t a = add_ch == 1 ? add[0] : add[(i / add_inner) % add_ch];
        int64_t v = slmc_ldt(x, xt, i) * m + a + half;
        v = slmc_shr(v, shift);
        slmc_stt(y, yt, i, v < lo ? lo : v > hi ? hi : v);
    }
}
