#include "slmc_kernels.h"

/* -q int8 projection bias: x int32 [n, cols] (the product, in its output's format) plus b int32 [cols] in
 * the same format, saturated to int16 (out_bits 16) or int32. */
void slmc_bias_i(void *out, const int32_t *x, const int32_t *b, int n, int cols, int out_bits) {
    for (int i = 0; i < n; i++)
        for (int j = 0; j < cols; j++)
            slmc_i8_store(out, (size_t)i * cols + j, (int64_t)x[(size_t)i * cols + j] + b[j], 0, out_bits);
}
