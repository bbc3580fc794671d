#include "slmc_kernels.h"

/* Deeploy's IntegerDiv: C = round_half_away_from_zero(Delta * eta * A / (eta * B + eps)), exactly:
 * sign * floor((2|num| + |den|) / (2|den|)). A zero divisor gives 0. A and B have C's shape. */

void slmc_integer_div(void *c, int ct, const void *a, int at, const void *b, int bt, int32_t n, int64_t delta,
                      int64_t eta, int64_t eps) {
    for (int32_t i = 0; i < n; i++) {
        int64_t num = delta * eta * slmc_ldt(a, at, i), den = eta * slmc_ldt(b, bt, i) + eps;
        int64_t an = num < 0 ? -num : num, ad = den < 0 ? -den : den;
        int64_t q = ad ? (2 * an + ad) / (2 * ad) : 0;
        slmc_stt(c, ct, i, (num < 0) != (den < 0) ? -q : q);
    }
}
