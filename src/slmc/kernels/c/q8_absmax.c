#include "slmc_kernels.h"

/* Per q8 group, the largest |x| of this chip's columns of an activation split over chips: x holds
 * global columns offset .. offset+k-1 of rows of n_groups groups of `group`; groups this chip does
 * not touch get 0. An all-reduce-max then gives every chip quantize_q8.c's scale of the whole row. */
void slmc_q8_absmax(float *amax, const float *x, int n, int k, int offset, int group, int n_groups) {
    for (int s = 0; s < n; s++) {
        float *a = amax + (size_t)s * n_groups;
        for (int g = 0; g < n_groups; g++) a[g] = 0.0f;
        for (int j = 0; j < k; j++) {
            float v = fabsf(x[(size_t)s * k + j]);
            int g = (offset + j) / group;
            if (v > a[g]) a[g] = v;
        }
    }
}
