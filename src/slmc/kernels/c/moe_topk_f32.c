#include "slmc_kernels.h"

/* A mixture of experts' routing, per row: softmax over the n_experts router logits, the k largest
 * probabilities (ties: the lower expert first), renormalised to sum 1 when `renorm` (Mixtral), else kept
 * (OLMoE, Qwen2-MoE with norm_topk_prob false). ids[r][j] is the j-th choice, w[r][j] its weight.
 * The probabilities live in `p` (n_experts floats of scratch).
 * plan not NULL and row >= 0 (--expert-routing predicted, SiDA's setting): the k experts the predictor planned
 * for this layer (plan[r][row], moe_predict_f32.c) replace the router's choice, in the predictor's order,
 * weighted by the router's probabilities renormalised over them. */
void slmc_moe_topk_f32(int32_t *ids, float *w, const float *logits, float *p, int n, int n_experts, int k,
                       int renorm, const int32_t *plan, int n_pred, int row) {
    for (int r = 0; r < n; r++) {
        const float *l = logits + (size_t)r * n_experts;
        float mx = l[0], sum = 0.0f;
        for (int e = 1; e < n_experts; e++) if (l[e] > mx) mx = l[e];
        for (int e = 0; e < n_experts; e++) { p[e] = expf(l[e] - mx); sum += p[e]; }
        for (int e = 0; e < n_experts; e++) p[e] /= sum;
        float kept = 0.0f;
        if (plan && row >= 0) {
            for (int j = 0; j < k; j++) {
                int e = plan[((size_t)r * n_pred + row) * k + j];
                ids[(size_t)r * k + j] = e;
                w[(size_t)r * k + j] = p[e];
                kept += p[e];
            }
            for (int j = 0; j < k; j++) w[(size_t)r * k + j] /= kept;
            continue;
        }
        for (int j = 0; j < k; j++) {
            int best = -1;
            for (int e = 0; e < n_experts; e++)
                if (p[e] >= 0.0f && (best < 0 || p[e] > p[best])) best = e;
            ids[(size_t)r * k + j] = best;
            w[(size_t)r * k + j] = p[best];
            kept += p[best];
            p[best] = -1.0f;  /* taken */
        }
        if (renorm)
            for (int j = 0; j < k; j++) w[(size_t)r * k + j] /= kept;
    }
}
