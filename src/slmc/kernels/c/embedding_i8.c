#include "slmc_kernels.h"

/* -q int8: row ids[i] of the int8 table, each group times its integer multiplier, into the int32
 * residual format: out = (q * m[group] + 2^(shift-1)) >> shift. */
void slmc_embedding_i8(int32_t *out, const int8_t *q, const int32_t *m, const int32_t *ids, int n, int dim,
                       int group, int shift) {
    int ng = dim / group;
    for (int i = 0; i < n; i++) {
        const int8_t *row = q + (size_t)ids[i] * dim;
        const int32_t *mr = m + (size_t)ids[i] * ng;
        for (int j = 0; j < dim; j++)
            out[(size_t)i * dim + j] = slmc_sat32(slmc_rshift_round((int64_t)row[j] * mr[j / group], shift));
    }
}
