#include "slmc_kernels.h"

/* ONNX Gather: x viewed as [outer, axis_dim, inner] elements of elem bytes; out[o][j] = x[o][idx[j]]
 * for the n_idx indices (int32 or int64: idx_size 4 or 8). Negative indices count from the end; an
 * index out of range gives zeros (ONNX calls it an error; on a chip nothing may read outside x). */
void slmc_gather(void *out, const void *x, const void *idx, int idx_size, int elem, int outer, int axis_dim,
                 int inner, int n_idx) {
    size_t row = (size_t)inner * elem;
    uint8_t *o = (uint8_t *)out;
    for (int b = 0; b < outer; b++) {
        const uint8_t *xb = (const uint8_t *)x + (size_t)b * axis_dim * row;
        for (int j = 0; j < n_idx; j++, o += row) {
            int64_t k = idx_size == 8 ? ((const int64_t *)idx)[j] : ((const int32_t *)idx)[j];
            if (k < 0) k += axis_dim;
            if (k < 0 || k >= axis_dim) memset(o, 0, row);
            else memcpy(o, xb + (size_t)k * row, row);
        }
    }
}
