#include "slmc_kernels.h"

/* attention_f32.c over a KV cache stored as binary16 bit patterns (kv_write_f16.c): every cached
 * value is converted back to float exactly (every half is a float) where it is read, and the
 * arithmetic is attention_f32.c's, operation for operation. Integer conversion, not
 * _Float16/__fp16, so that every target computes the same bits. */
static inline float kv_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, t = (uint32_t)h << 17, a = h & 0x7fffu, x;
    if (t - 0x08000000u < 0xf0000000u) {              /* exponent 1..30, a normal half: rebias it by 127 - 15 */
        x = sign | ((t >> 4) + 0x38000000u);
    } else if (a >= 0x7c00u) {                        /* inf, nan (payload kept) */
        x = sign | 0x7f800000u | ((a & 0x3ffu) << 13);
    } else if (a == 0) {
        x = sign;
    } else {                                          /* subnormal: m * 2^-24, normalised */
        uint32_t e = 113;
        while (!(a & 0x400u)) a <<= 1, e--;
        x = sign | (e << 23) | ((a & 0x3ffu) << 13);
    }
    float f;
    memcpy(&f, &x, 4);
    return f;
}

/* Causal attention with grouped-query heads: token s of the chunk sits at position pos + s and
 * sees positions 0 .. pos + s (the last `window` of them where window > 0; softcap as attention_f32.c). Each cached row is converted once for all the query heads that share
 * it (kv_mul = n_heads / n_kv_heads), into `row`; every head's scores, softmax and weighted sum are
 * attention_f32.c's, in the same order. Scratch: kv_mul * seq_len scores, then hd floats for `row`.
 * This function does KV heads kh0 .. kh1-1 (the cluster's wrapper, parallel_attention_f16kv.c, gives
 * each core a range and its own scratch); slmc_attention_f16kv all of them. */
void slmc_attention_f16kv_heads(float *out, const float *q, const uint16_t *kc, const uint16_t *vc, float *att,
                                int n, int n_heads, int n_kv_heads, int hd, int pos, int window, float softcap,
                                int kh0, int kh1) {
    int kv_dim = n_kv_heads * hd, kv_mul = n_heads / n_kv_heads, stride = pos + n;
    float *row = att + (size_t)kv_mul * stride;
    float scale = sqrtf((float)hd);
    for (int s = 0; s < n; s++) {
        int len = pos + s + 1, t0 = window > 0 && len > window ? len - window : 0;
        for (int kh = kh0; kh < kh1; kh++) {
            const float *q0 = q + (size_t)s * n_heads * hd + (size_t)kh * kv_mul * hd;
            float *o0 = out + (size_t)s * n_heads * hd + (size_t)kh * kv_mul * hd;
            for (int t = t0; t < len; t++) {
                const uint16_t *k = kc + (size_t)t * kv_dim + (size_t)kh * hd;
                for (int i = 0; i < hd; i++) row[i] = kv_f16_to_f32(k[i]);
                for (int j = 0; j < kv_mul; j++) {
                    const float *qh = q0 + (size_t)j * hd;
                    float score = 0.0f;
                    for (int i = 0; i < hd; i++) score += qh[i] * row[i];
                    score /= scale;
                    if (softcap > 0.0f) score = tanhf(score / softcap) * softcap;
                    att[(size_t)j * stride + t] = score;
                }
            }
            for (int j = 0; j < kv_mul; j++) {
                float *a = att + (size_t)j * stride, mx = -INFINITY, sum = 0.0f;
                for (int t = t0; t < len; t++)
                    if (a[t] > mx) mx = a[t];
                for (int t = t0; t < len; t++) { a[t] = expf(a[t] - mx); sum += a[t]; }
                for (int t = t0; t < len; t++) a[t] /= sum;
                for (int i = 0; i < hd; i++) o0[(size_t)j * hd + i] = 0.0f;
            }
            for (int t = t0; t < len; t++) {
                const uint16_t *v = vc + (size_t)t * kv_dim + (size_t)kh * hd;
                for (int i = 0; i < hd; i++) row[i] = kv_f16_to_f32(v[i]);
                for (int j = 0; j < kv_mul; j++) {
                    float a = att[(size_t)j * stride + t], *oh = o0 + (size_t)j * hd;
                    for (int i = 0; i < hd; i++) oh[i] += a * row[i];
                }
            }
        }
    }
}

void slmc_attention_f16kv(float *out, const float *q, const uint16_t *kc, const uint16_t *vc, float *att,
                          int n, int n_heads, int n_kv_heads, int hd, int pos, int window, float softcap) {
    slmc_attention_f16kv_heads(out, q, kc, vc, att, n, n_heads, n_kv_heads, hd, pos, window, softcap, 0, n_kv_heads);
}
