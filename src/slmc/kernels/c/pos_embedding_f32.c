#include "slmc_kernels.h"

/* Learned positions (GPT-2): rows pos .. pos+n-1 of the table. */
void slmc_pos_embedding_f32(float *out, const float *table, int pos, int n, int dim) {
    memcpy(out, table + (size_t)pos * dim, (size_t)n * dim * sizeof(float));
}
