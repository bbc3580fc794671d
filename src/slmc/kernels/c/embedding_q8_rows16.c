#include "slmc_kernels.h"

/* embedding_q8.c over a table in the "rows16" order (quant/q8.py pack_rows16): where the table is also the
 * classifier's weights and the classifier runs linear_q8_rows16.c (a batched host step), the embedding reads
 * that order too, so the table is stored once. Rows in blocks of 16, [block][dim/4][row][4 bytes]; scales
 * [block][group][row]; rows after the last block row-major. */
void slmc_embedding_q8_rows16(float *out, const int8_t *q, const float *s, const int32_t *ids, int n, int dim,
                              int group, int rows) {
    int ng = dim / group, full = rows / 16 * 16;
    for (int t = 0; t < n; t++) {
        int r = ids[t];
        /* element i of row r: its byte, and its group's scale */
        size_t q0 = r < full ? (size_t)(r / 16) * 16 * dim + (size_t)(r % 16) * 4 : (size_t)r * dim;
        size_t s0 = r < full ? (size_t)(r / 16) * 16 * ng + (size_t)(r % 16) : (size_t)r * ng;
        size_t qstep = r < full ? 64 : 4, sstep = r < full ? 16 : 1;
        float *o = out + (size_t)t * dim;
        for (int i = 0; i < dim; i++)
            o[i] = (float)q[q0 + (size_t)(i / 4) * qstep + (size_t)(i % 4)] * s[s0 + (size_t)(i / group) * sstep];
    }
}
