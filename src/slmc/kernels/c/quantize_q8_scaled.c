#include "slmc_kernels.h"

/* quantize_q8.c for this chip's columns offset .. offset+k-1 of a row whose group maxima (amax,
 * n_groups per row) came from every chip: the same scale max/127 and the same roundf, so the same
 * int8 values as on one chip. One scale per segment (a group this chip touches), as
 * linear_q8_dots.c and link_fold_q8.c count them. */
void slmc_quantize_q8_scaled(int8_t *q, float *s, const float *x, const float *amax, int n, int k, int offset,
                             int group, int n_groups) {
    int first = offset / group, n_seg = (offset + k - 1) / group - first + 1;
    for (int r = 0; r < n; r++)
        for (int g = 0; g < n_seg; g++) {
            float scale = amax[(size_t)r * n_groups + first + g] / 127.0f;
            s[(size_t)r * n_seg + g] = scale;
            int a = (first + g) * group - offset, b = a + group;
            if (a < 0) a = 0;
            if (b > k) b = k;
            for (int i = a; i < b; i++)
                q[(size_t)r * k + i] = scale == 0.0f ? 0 : (int8_t)roundf(x[(size_t)r * k + i] / scale);
        }
}
