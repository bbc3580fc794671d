#include "slmc_kernels.h"

/* ONNX GatherND. x is [batches, dims[0], ..., dims[depth-1], slice] (elements of elem bytes); idx holds,
 * per batch, n_idx tuples of depth indices (int32 or int64: idx_size 4 or 8). Each tuple picks one slice
 * of x. Negative indices count from the end; a tuple with an index out of range gives zeros (ONNX
 * calls it an error; on a chip nothing may read outside x). */
void slmc_gather_nd(void *out, const void *x, const void *idx, int idx_size, int elem, int batches, int n_idx,
                    int depth, const int32_t *dims, int32_t batch_elems, int32_t slice) {
    size_t row = (size_t)slice * elem;
    uint8_t *o = (uint8_t *)out;
    for (int b = 0; b < batches; b++) {
        const uint8_t *xb = (const uint8_t *)x + (size_t)b * batch_elems * elem;
        for (int j = 0; j < n_idx; j++, o += row) {
            size_t t = (size_t)b * n_idx + j, at = 0;
            int ok = 1;
            for (int d = 0; d < depth; d++) {
                size_t p = t * depth + d;
                int64_t k = idx_size == 8 ? ((const int64_t *)idx)[p] : ((const int32_t *)idx)[p];
                if (k < 0) k += dims[d];
                if (k < 0 || k >= dims[d]) ok = 0;
                at = at * (size_t)dims[d] + (size_t)(ok ? k : 0);
            }
            if (ok) memcpy(o, xb + at * row, row);
            else memset(o, 0, row);
        }
    }
}
