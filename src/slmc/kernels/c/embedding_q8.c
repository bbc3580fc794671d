#include "slmc_kernels.h"

/* The table stays int8 in flash; a row is dequantized when it is looked up (runq.c dequantizes the
 * whole table into RAM at start-up, which an MCU cannot afford). */
void slmc_embedding_q8(float *out, const int8_t *q, const float *s, const int32_t *ids, int n, int dim, int group) {
    int ng = dim / group;
    for (int t = 0; t < n; t++) {
        const int8_t *qr = q + (size_t)ids[t] * dim;
        const float *sr = s + (size_t)ids[t] * ng;
        float *o = out + (size_t)t * dim;
        for (int i = 0; i < dim; i++) o[i] = (float)qr[i] * sr[i / group];
    }
}
