#include "slmc_kernels.h"

/* -q int8 residual add, saturating: the int32 sum, wrapped, is wrong exactly when both inputs have one
 * sign and the sum the other (then the result is the extreme of the inputs' sign), so no int64 sum
 * (five instructions a value on RV32 instead of about fifteen) */
void slmc_add_i32(int32_t *out, const int32_t *a, const int32_t *b, int count) {
    for (int i = 0; i < count; i++) {
        uint32_t x = (uint32_t)a[i], y = (uint32_t)b[i], s = x + y;
        out[i] = (int32_t)(((x ^ s) & (y ^ s)) >> 31 ? (x >> 31) + 0x7FFFFFFFu : s);
    }
}
