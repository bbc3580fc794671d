#include "slmc_kernels.h"

/* -q int8 matrix product: x int16 [n, cols], q int8 [rows, cols] in groups, m int32 [rows, cols/group]:
 * per group an int32 sum of products, times the group's multiplier, summed in int64, then
 * (sum + 2^(shift-1)) >> shift, saturated to int16 (out_bits 16) or int32 (out_bits 32). */
void slmc_linear_i8(void *out, const int16_t *x, const int8_t *q, const int32_t *m, int n, int rows, int cols,
                    int group, int shift, int out_bits) {
    int ng = cols / group;
    for (int i = 0; i < n; i++)
        for (int r = 0; r < rows; r++)
            slmc_i8_store(out, (size_t)i * rows + r,
                          slmc_i8_row(x + (size_t)i * cols, q + (size_t)r * cols, m + (size_t)r * ng, cols, group),
                          shift, out_bits);
}
