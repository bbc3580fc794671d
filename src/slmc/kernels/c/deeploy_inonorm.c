#include "slmc_kernels.h"

/* Deeploy's iNoNorm (elementwise affine, MobileBERT's NoNorm): y = ((x * w + b) * mul) >> shift.
 * w and b have x's shape (the importer broadcasts them). */

void slmc_inonorm(void *y, int yt, const void *x, int xt, const void *w, int wt, const void *b, int bt, int32_t n,
                  int64_t mul, int shift) {
    for (int32_t i = 0; i < n; i++) slmc_stt(y, yt, i, slmc_shr((slmc_ldt(x, xt, i) * slmc_ldt(w, wt, i) + slmc_ldt(b, bt, i)) * mul, shift));
}
