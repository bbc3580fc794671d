#include "slmc_kernels.h"

/* out[s] = table[ids[s]]: one row copy per token. */
void slmc_embedding_f32(float *out, const float *table, const int32_t *ids, int n, int dim) {
    for (int s = 0; s < n; s++) memcpy(out + (size_t)s * dim, table + (size_t)ids[s] * dim, (size_t)dim * sizeof(float));
}
