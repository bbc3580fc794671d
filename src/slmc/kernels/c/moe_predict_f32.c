#include "slmc_kernels.h"

void slmc_expert_prefetch(uint8_t *pool, int32_t *table, int slots, int slot_bytes, const int32_t *plan, int n_pred,
                          int m, int first, int n_experts, const uint8_t *const *src, const int32_t *bytes, int parts);

/* The expert predictor (SiDA's idea; frontend/expert_predictor.py): from one hidden state per row, the m
 * experts each of the n_pred later layers' routers will most likely choose. x = h / sqrt(mean(h^2) + eps);
 * y = w0 @ x + b0; with a hidden layer (hidden > 0) y = w1 @ silu(y) + b1; y holds n_pred rows of n_experts
 * scores; plan[r][p] gets the m highest of row p, best first (ties: the lower expert). Scratch: x (dim),
 * the first layer's output (hidden, or n_pred * n_experts) and the scores (n_pred * n_experts), floats.
 * pool not NULL (a one-row step with an expert cache): the planned experts are loaded into its slots
 * ahead of use (expert_cache.c; src: each predicted layer's `parts` expert arrays, first = its first layer).
 * Called in every layer of the loop; it works in the one where `active` (the layer after its input layer). */
void slmc_moe_predict_f32(int active, int32_t *plan, const float *h, const float *w0, const float *b0, const float *w1,
                          const float *b1, float *scratch, int n, int dim, int hidden, int n_pred, int n_experts,
                          int m, float eps, uint8_t *pool, int32_t *table, int slots, int slot_bytes, int first,
                          const uint8_t *const *src, const int32_t *bytes, int parts) {
    if (!active) return;
    int outs = n_pred * n_experts;
    float *x = scratch, *y = x + dim, *s = y + (hidden ? hidden : outs);
    for (int r = 0; r < n; r++) {
        const float *hr = h + (size_t)r * dim;
        float ss = 0.0f;
        for (int j = 0; j < dim; j++) ss += hr[j] * hr[j];
        ss = 1.0f / sqrtf(ss / (float)dim + eps);
        for (int j = 0; j < dim; j++) x[j] = ss * hr[j];
        if (hidden) {
            for (int i = 0; i < hidden; i++) {
                float v = slmc_dot_f32(w0 + (size_t)i * dim, x, dim) + b0[i];
                y[i] = v * (1.0f / (1.0f + expf(-v)));
            }
            for (int i = 0; i < outs; i++) s[i] = slmc_dot_f32(w1 + (size_t)i * hidden, y, hidden) + b1[i];
        } else {
            for (int i = 0; i < outs; i++) s[i] = slmc_dot_f32(w0 + (size_t)i * dim, x, dim) + b0[i];
        }
        int32_t *pr = plan + (size_t)r * n_pred * m;
        for (int p = 0; p < n_pred; p++) {
            float *sp = s + (size_t)p * n_experts;
            for (int j = 0; j < m; j++) {
                int best = -1;
                for (int e = 0; e < n_experts; e++)
                    if (sp[e] != -INFINITY && (best < 0 || sp[e] > sp[best])) best = e;
                pr[p * m + j] = best;
                sp[best] = -INFINITY;  /* taken (the scores of finite weights are finite) */
            }
        }
    }
    if (pool && n == 1) {
        slmc_expert_prefetch(pool, table, slots, slot_bytes, plan, n_pred, m, first, n_experts, src, bytes, parts);
        x[0] = 0.0f;  /* a store after the call: no tail call, so instruction counts attribute the loads to this kernel */
    }
}
