#include "slmc_kernels.h"

const uint8_t *slmc_expert_fetch(uint8_t *pool, int32_t *table, int slots, int slot_bytes, int policy, int32_t tag0,
                                 int32_t e, const uint8_t *const *src, const int32_t *bytes, int parts);

/* The chosen experts' SwiGLU FFNs, weighted and summed, per row: out[r] = sum_j w[r][j] * expert_e(x[r]),
 * e = ids[r][j], expert_e(x) = w2[e] @ (silu(w1[e] @ x) * (w3[e] @ x)). The experts' weights are stacked
 * [n_experts][rows][cols]; only the chosen experts' are read, in place, or (pool not NULL) from their copy in
 * the expert cache (expert_cache.c; tag0: this layer's first tag). Scratch: the SwiGLU row (hidden floats). */
void slmc_moe_experts_f32(float *out, const float *x, const int32_t *ids, const float *w, const float *w1,
                          const float *w3, const float *w2, float *scratch, int n, int dim, int hidden, int k,
                          uint8_t *pool, int32_t *table, int slots, int slot_bytes, int policy, int tag0) {
    float *g = scratch;
    for (int r = 0; r < n; r++) {
        const float *xr = x + (size_t)r * dim;
        float *o = out + (size_t)r * dim;
        for (int i = 0; i < dim; i++) o[i] = 0.0f;
        for (int j = 0; j < k; j++) {
            int e = ids[(size_t)r * k + j];
            float wt = w[(size_t)r * k + j];
            const float *a = w1 + (size_t)e * hidden * dim, *b = w3 + (size_t)e * hidden * dim;
            const float *d = w2 + (size_t)e * dim * hidden;
            if (pool) {
                const uint8_t *src[3] = {(const uint8_t *)a, (const uint8_t *)b, (const uint8_t *)d};
                const int32_t sz = (int32_t)(sizeof(float) * (size_t)hidden * dim), bytes[3] = {sz, sz, sz};
                const float *c = (const float *)slmc_expert_fetch(pool, table, slots, slot_bytes, policy, tag0, e, src,
                                                                  bytes, 3);
                a = c, b = c + (size_t)hidden * dim, d = c + 2 * (size_t)hidden * dim;
            }
            for (int h = 0; h < hidden; h++) {
                float v = slmc_dot_f32(a + (size_t)h * dim, xr, dim);
                g[h] = v * (1.0f / (1.0f + expf(-v))) * slmc_dot_f32(b + (size_t)h * dim, xr, dim);
            }
            for (int i = 0; i < dim; i++) o[i] += wt * slmc_dot_f32(d + (size_t)i * hidden, g, hidden);
        }
    }
}
