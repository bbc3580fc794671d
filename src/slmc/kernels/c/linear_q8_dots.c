#include "slmc_kernels.h"

/* The integer half of linear_q8.c on this chip's columns offset .. offset+k-1 of a matrix whose
 * q8 groups of `group` columns start at column 0: per output row and per group this chip touches
 * (a segment; a group may continue on the next chip), the exact int32 dot product. The float half,
 * rescaling and summing in group order, is done by fold_q8 over the chips (link_fold_q8.c), so a
 * partitioned q8 model adds the very same floats in the very same order as one chip. */
void slmc_linear_q8_dots(int32_t *dots, const int8_t *xq, const int8_t *wq, int n, int k, int m, int offset,
                         int group) {
    int first = offset / group, n_seg = (offset + k - 1) / group - first + 1;
    for (int s = 0; s < n; s++)
        for (int i = 0; i < m; i++) {
            const int8_t *xr = xq + (size_t)s * k, *wr = wq + (size_t)i * k;
            int32_t *d = dots + ((size_t)s * m + i) * n_seg;
            for (int g = 0; g < n_seg; g++) {
                int a = (first + g) * group - offset, b = a + group;
                if (a < 0) a = 0;
                if (b > k) b = k;
                int32_t acc = 0;
                for (int j = a; j < b; j++) acc += (int32_t)xr[j] * (int32_t)wr[j];
                d[g] = acc;
            }
        }
}
