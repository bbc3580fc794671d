#include "slmc_kernels.h"

/* -q int8 learned positions: rows pos .. pos+n-1 of the int8 table, each group times its integer
 * multiplier, into the int32 residual format (embedding_i8.c's rule). */
void slmc_pos_embedding_i8(int32_t *out, const int8_t *q, const int32_t *m, int pos, int n, int dim, int group,
                           int shift) {
    int ng = dim / group;
    for (int i = 0; i < n; i++) {
        const int8_t *row = q + (size_t)(pos + i) * dim;
        const int32_t *mr = m + (size_t)(pos + i) * ng;
        for (int j = 0; j < dim; j++)
            out[(size_t)i * dim + j] = slmc_sat32(slmc_rshift_round((int64_t)row[j] * mr[j / group], shift));
    }
}
