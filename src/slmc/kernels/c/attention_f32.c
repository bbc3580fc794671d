#include "slmc_kernels.h"

/* Causal attention over the KV cache with grouped-query heads: token s of the chunk sits at
 * position pos + s and sees positions 0 .. pos + s, or with window > 0 only the last `window` of
 * them (sliding-window attention: Mistral, Gemma 2/3's local layers, GPT-Neo's). softcap > 0 caps
 * every score at softcap * tanh(score / softcap) (Gemma 2). att is scratch for one head's scores
 * (seq_len floats). Scores, softmax and weighted sum follow llama2.c's run.c. This function does
 * heads h0 .. h1-1 (the cluster's wrapper, parallel_attention_f32.c, gives each core a range and its
 * own scratch); slmc_attention_f32 all of them. */
void slmc_attention_f32_heads(float *out, const float *q, const float *kc, const float *vc, float *att,
                              int n, int n_heads, int n_kv_heads, int hd, int pos, int window, float softcap,
                              int h0, int h1) {
    int kv_dim = n_kv_heads * hd, kv_mul = n_heads / n_kv_heads;
    float scale = sqrtf((float)hd);
    for (int s = 0; s < n; s++) {
        int len = pos + s + 1, t0 = window > 0 && len > window ? len - window : 0;
        for (int h = h0; h < h1; h++) {
            const float *qh = q + (size_t)s * n_heads * hd + (size_t)h * hd;
            int kvo = (h / kv_mul) * hd;
            float mx = -INFINITY;
            for (int t = t0; t < len; t++) {
                const float *k = kc + (size_t)t * kv_dim + kvo;
                float score = 0.0f;
                for (int i = 0; i < hd; i++) score += qh[i] * k[i];
                score /= scale;
                if (softcap > 0.0f) score = tanhf(score / softcap) * softcap;
                att[t] = score;
                if (score > mx) mx = score;
            }
            float sum = 0.0f;
            for (int t = t0; t < len; t++) { att[t] = expf(att[t] - mx); sum += att[t]; }
            for (int t = t0; t < len; t++) att[t] /= sum;
            float *oh = out + (size_t)s * n_heads * hd + (size_t)h * hd;
            for (int i = 0; i < hd; i++) oh[i] = 0.0f;
            for (int t = t0; t < len; t++) {
                const float *v = vc + (size_t)t * kv_dim + kvo;
                float a = att[t];
                for (int i = 0; i < hd; i++) oh[i] += a * v[i];
            }
        }
    }
}

void slmc_attention_f32(float *out, const float *q, const float *kc, const float *vc, float *att,
                        int n, int n_heads, int n_kv_heads, int hd, int pos, int window, float softcap) {
    slmc_attention_f32_heads(out, q, kc, vc, att, n, n_heads, n_kv_heads, hd, pos, window, softcap, 0, n_heads);
}
