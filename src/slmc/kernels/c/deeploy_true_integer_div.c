#include "slmc_kernels.h"

/* Deeploy's TrueIntegerDiv: y_out = x * floor(Delta * eta / (y * eta + eps)), y an attribute (the
 * quotient is one number; floor, not C's truncation, when it is negative). */

void slmc_true_integer_div(void *out, int ot, const void *x, int xt, int32_t n, int64_t delta, int64_t eta,
                           int64_t eps, int64_t y) {
    int64_t num = delta * eta, den = y * eta + eps, k = num / den;
    if (num % den != 0 && ((num < 0) != (den < 0))) k -= 1;
    for (int32_t i = 0; i < n; i++) slmc_stt(out, ot, i, slmc_ldt(x, xt, i) * k);
}
