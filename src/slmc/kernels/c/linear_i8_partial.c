#include "slmc_kernels.h"

/* -q int8 on one chip of a partitioned model: the chip's columns [offset, offset + k) of a matrix
 * product whose inputs are split over the chips (Wo by heads, W2 by FFN slices). Per row, the sum of
 * products over the columns the chip holds of each group times that group's multiplier (m holds the
 * multipliers of the groups the slice touches), summed in int64 without the final shift: the chips'
 * partials add up exactly to linear_i8.c's sum, which requant_i64.c then shifts. */
void slmc_linear_i8_partial(int64_t *out, const int16_t *x, const int8_t *q, const int32_t *m, int n, int rows,
                            int k, int offset, int group) {
    int first = offset / group, ng = (offset + k - 1) / group - first + 1;
    for (int i = 0; i < n; i++) {
        const int16_t *xi = x + (size_t)i * k;
        for (int r = 0; r < rows; r++) {
            const int8_t *w = q + (size_t)r * k;
            int64_t acc = 0;
            for (int c = 0; c < k;) {
                int g = (offset + c) / group, end = (g + 1) * group - offset;
                if (end > k) end = k;
                int32_t a = 0;
                for (; c < end; c++) a += (int32_t)xi[c] * w[c];
                acc += (int64_t)a * m[(size_t)r * ng + (g - first)];
            }
            out[(size_t)i * rows + r] = acc;
        }
    }
}
