#include "slmc_kernels.h"

/* moe_experts_f32.c in llama2.c's q8 numerics: the row quantized once per group (quantize_q8.c's rule),
 * each chosen expert's gate and up products as linear_q8.c computes them (int32 dots per group, rescaled
 * and summed in float in group order), the SwiGLU output quantized in its groups, the down product the
 * same way, then weighted and summed in choice order. Weights stacked [n_experts][rows][cols] (int8) with
 * their scales [n_experts][rows][cols / group]. Scratch: xq (dim), hq (hidden) int8 and their scales,
 * then the gate row (hidden floats). pool not NULL: the expert's six arrays come from its copy in the expert
 * cache (expert_cache.c), in the order w1q, w3q, w2q, w1s, w3s, w2s. */
void slmc_quantize_q8(int8_t *q, float *s, const float *x, int n, int k, int group);
const uint8_t *slmc_expert_fetch(uint8_t *pool, int32_t *table, int slots, int slot_bytes, int policy, int32_t tag0,
                                 int32_t e, const uint8_t *const *src, const int32_t *bytes, int parts);

static float q8_dot(const int8_t *xq, const float *xs, const int8_t *wr, const float *wsr, int k, int group) {
    float val = 0.0f;
    for (int g = 0; g < k / group; g++) {
        int32_t ival = 0;
        for (int j = 0; j < group; j++) ival += (int32_t)xq[g * group + j] * (int32_t)wr[g * group + j];
        val += ((float)ival) * wsr[g] * xs[g];
    }
    return val;
}

void slmc_moe_experts_q8(float *out, const float *x, const int32_t *ids, const float *w, const int8_t *w1q,
                         const float *w1s, const int8_t *w3q, const float *w3s, const int8_t *w2q, const float *w2s,
                         float *scratch, int n, int dim, int hidden, int k, int g_dim, int g_hidden,
                         uint8_t *pool, int32_t *table, int slots, int slot_bytes, int policy, int tag0) {
    float *xs = scratch, *hs = xs + dim / g_dim, *gate = hs + hidden / g_hidden;
    int8_t *xq = (int8_t *)(gate + hidden), *hq = xq + dim;
    for (int r = 0; r < n; r++) {
        float *o = out + (size_t)r * dim;
        slmc_quantize_q8(xq, xs, x + (size_t)r * dim, 1, dim, g_dim);
        for (int i = 0; i < dim; i++) o[i] = 0.0f;
        for (int j = 0; j < k; j++) {
            size_t e = (size_t)ids[(size_t)r * k + j];
            float wt = w[(size_t)r * k + j];
            const int8_t *a = w1q + e * hidden * dim, *b = w3q + e * hidden * dim, *d = w2q + e * dim * hidden;
            const float *as = w1s + e * hidden * (dim / g_dim), *bs = w3s + e * hidden * (dim / g_dim);
            const float *ds = w2s + e * dim * (hidden / g_hidden);
            if (pool) {
                const uint8_t *src[6] = {(const uint8_t *)a, (const uint8_t *)b, (const uint8_t *)d,
                                         (const uint8_t *)as, (const uint8_t *)bs, (const uint8_t *)ds};
                const int32_t mq = (int32_t)((size_t)hidden * dim), ms = (int32_t)(4 * (size_t)hidden * (dim / g_dim));
                const int32_t bytes[6] = {mq, mq, mq, ms, ms, (int32_t)(4 * (size_t)dim * (hidden / g_hidden))};
                const uint8_t *c = slmc_expert_fetch(pool, table, slots, slot_bytes, policy, tag0, (int32_t)e, src, bytes, 6);
                size_t off[6], o = 0;
                for (int p = 0; p < 6; p++) { off[p] = o; o += ((size_t)bytes[p] + 3u) & ~(size_t)3u; }
                a = (const int8_t *)c, b = (const int8_t *)(c + off[1]), d = (const int8_t *)(c + off[2]);
                as = (const float *)(c + off[3]), bs = (const float *)(c + off[4]), ds = (const float *)(c + off[5]);
            }
            for (int h = 0; h < hidden; h++) {
                float v = q8_dot(xq, xs, a + (size_t)h * dim, as + (size_t)h * (dim / g_dim), dim, g_dim);
                float u = q8_dot(xq, xs, b + (size_t)h * dim, bs + (size_t)h * (dim / g_dim), dim, g_dim);
                gate[h] = v * (1.0f / (1.0f + expf(-v))) * u;
            }
            slmc_quantize_q8(hq, hs, gate, 1, hidden, g_hidden);
            for (int i = 0; i < dim; i++)
                o[i] += wt * q8_dot(hq, hs, d + (size_t)i * hidden, ds + (size_t)i * (hidden / g_hidden), hidden, g_hidden);
        }
    }
}
