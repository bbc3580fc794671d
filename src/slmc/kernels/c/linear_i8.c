#include "slmc_kernels.h"

/* -q int8 matrix product: x int16 [n, cols], q int8 [rows, cols] in groups, m int32 [rows, cols/group]:
 * per group an int32 sum of products, times the group's multiplier, summed in int64, then
 * (sum + 2^(shift-1)) >> shift, saturated to int16 (out_bits 16) or int32 (out_bits 32). */
void slmc_linear_i8(void *out, const int16_t *x, const int8_t *q, const int32_t *m, int n, int rows, int cols,
                    int group, int shift, int out_bits) {
    int ng = cols / group;
    for (int i = 0; i < n; i++) {
        const int16_t *xi = x + (size_t)i * cols;
        for (int r = 0; r < rows; r++) {
            const int8_t *w = q + (size_t)r * cols;
            const int32_t *mr = m + (size_t)r * ng;
            int64_t acc = 0;
            for (int g = 0; g < ng; g++) {
                int32_t a = 0;
                for (int k = g * group; k < (g + 1) * group; k++) a += (int32_t)xi[k] * w[k];
                acc += (int64_t)a * mr[g];
            }
            int64_t y = slmc_rshift_round(acc, shift);
            if (out_bits == 16) ((int16_t *)out)[(size_t)i * rows + r] = slmc_sat16(y);
            else ((int32_t *)out)[(size_t)i * rows + r] = slmc_sat32(y);
        }
    }
}
