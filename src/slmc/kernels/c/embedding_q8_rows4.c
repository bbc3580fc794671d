#include "slmc_kernels.h"

/* embedding_q8.c over a table in the "rows4" blob order (quant/q8.py pack_rows4): where the table is
 * also the classifier's weights and the target's linear_q8 reads that order (linear_q8_dsp.c), the
 * embedding reads it too, so the table is stored once. Rows in blocks of four, word-interleaved
 * ([block][dim/4][row][4 bytes]); scales [block][group][row]; rows after the last block row-major. */
void slmc_embedding_q8_rows4(float *out, const int8_t *q, const float *s, const int32_t *ids, int n, int dim,
                             int group, int rows) {
    int ng = dim / group, full = rows / 4 * 4;
    for (int t = 0; t < n; t++) {
        int r = ids[t];
        /* element i of row r: its byte, and its group's scale */
        size_t q0 = r < full ? (size_t)(r / 4) * 4 * dim + (size_t)(r % 4) * 4 : (size_t)r * dim;
        size_t s0 = r < full ? (size_t)(r / 4) * 4 * ng + (size_t)(r % 4) : (size_t)r * ng;
        size_t qstep = r < full ? 16 : 4, sstep = r < full ? 4 : 1;
        float *o = out + (size_t)t * dim;
        for (int i = 0; i < dim; i++)
            o[i] = (float)q[q0 + (size_t)(i / 4) * qstep + (size_t)(i % 4)] * s[s0 + (size_t)(i / group) * sstep];
    }
}
