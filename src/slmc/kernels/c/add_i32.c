#include "slmc_kernels.h"

/* -q int8 residual add, saturating. */
void slmc_add_i32(int32_t *out, const int32_t *a, const int32_t *b, int count) {
    for (int i = 0; i < count; i++) out[i] = slmc_sat32((int64_t)a[i] + b[i]);
}
