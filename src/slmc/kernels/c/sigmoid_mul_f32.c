#include "slmc_kernels.h"

/* out[r][i] = x[r][i] * sigmoid(g[r]): a mixture of experts' shared expert scaled by its gate (Qwen2-MoE),
 * g holding one value per row. */
void slmc_sigmoid_mul_f32(float *out, const float *x, const float *g, int n, int dim) {
    for (int r = 0; r < n; r++) {
        float s = 1.0f / (1.0f + expf(-g[r]));
        for (int i = 0; i < dim; i++) out[(size_t)r * dim + i] = x[(size_t)r * dim + i] * s;
    }
}
