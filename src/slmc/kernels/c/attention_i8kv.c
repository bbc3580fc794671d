#include "slmc_kernels.h"

/* Causal attention over the int8 KV cache (--kv-cache int8; kv_write_i8.c's records: head_dim int8 values and
 * a binary16 scale per position and KV head, converted to float exactly), integer dot products on both sides of the softmax:
 *   q.k  each query head quantized to int8 like a cache record (scale sq), an exact int32 dot product with
 *        each key; the score in units of log2(e): (float)dot * (sk * c2), c2 = (sq / sqrt(head_dim)) * log2(e)
 *        (with a soft-cap: slmc_i8kv_softcap((float)dot * (sk * c)) * log2(e), c = sq / sqrt(head_dim);
 *   softmax  e = 2^(score - max) by slmc_i8kv_exp2 (slmc_kernels.h: a polynomial, no libm, the same bits on every
 *        target), summed in position order, and w = e * sv (sv: the value record's scale), kept over the score;
 *   p.v  each w as an integer weight wq = (int)(w * (QM / max w) + 0.5), QM = 32767 (less where
 *        positions * 127 * QM would pass int32), an exact int32 sum of wq * v per output, then
 *        out = (float)acc * ((max w / QM) / sum).
 * Integer sums are exact in any order, so attention_i8kv_dsp.c (SMLAD on the Cortex-M33) gives the same bits;
 * the float steps are single IEEE operations (contraction off), so reference/kv_int8.py is the twin, bit for bit.
 * Token s of the chunk sits at position pos + s and sees 0 .. pos + s (the last `window` where window > 0).
 * Scratch: kv_mul * (pos + n) scores, kv_mul * head_dim query bytes (rounded up to 4), 2 * kv_mul factors,
 * head_dim sums (kernels/llm.py _i8kv_scratch). */
void slmc_i8kv_quantize(int8_t *q, float *scale, const float *x, int hd);


void slmc_attention_i8kv(float *out, const float *q, const int8_t *kc, const int8_t *vc, float *scratch, int n,
                         int n_heads, int n_kv_heads, int hd, int pos, int window, float softcap) {
    int kv_mul = n_heads / n_kv_heads, stride = pos + n, rec = hd + SLMC_I8KV_SCALE;
    size_t row = (size_t)n_kv_heads * rec;
    float *att = scratch;
    int8_t *qq = (int8_t *)(void *)(att + (size_t)kv_mul * stride);
    float *cq = (float *)(void *)(qq + (((size_t)kv_mul * hd + 3) & ~(size_t)3)), *c2 = cq + kv_mul;
    int32_t *acc = (int32_t *)(void *)(c2 + kv_mul);
    float sqrt_hd = sqrtf((float)hd);
    for (int s = 0; s < n; s++) {
        int len = pos + s + 1, t0 = window > 0 && len > window ? len - window : 0, count = len - t0;
        int qm = count <= 516 ? 32767 : (int)(2147483647 / (127 * (int64_t)count));
        for (int kh = 0; kh < n_kv_heads; kh++) {
            const float *q0 = q + (size_t)s * n_heads * hd + (size_t)kh * kv_mul * hd;
            float *o0 = out + (size_t)s * n_heads * hd + (size_t)kh * kv_mul * hd;
            for (int j = 0; j < kv_mul; j++) {
                float sq;
                slmc_i8kv_quantize(qq + (size_t)j * hd, &sq, q0 + (size_t)j * hd, hd);
                cq[j] = sq / sqrt_hd;
                c2[j] = cq[j] * SLMC_I8KV_LOG2E;
            }
            for (int t = t0; t < len; t++) {
                const int8_t *k = kc + (size_t)t * row + (size_t)kh * rec;
                float sk = slmc_i8kv_unhalf(k + hd);
                for (int j = 0; j < kv_mul; j++) {
                    const int8_t *qj = qq + (size_t)j * hd;
                    int32_t dot = 0;
                    for (int i = 0; i < hd; i++) dot += (int32_t)qj[i] * k[i];
                    att[(size_t)j * stride + t] = softcap > 0.0f
                        ? slmc_i8kv_softcap((float)dot * (sk * cq[j]), softcap) * SLMC_I8KV_LOG2E : (float)dot * (sk * c2[j]);
                }
            }
            const int8_t *v0 = vc + (size_t)kh * rec;
            for (int j = 0; j < kv_mul; j++) {
                float *a = att + (size_t)j * stride, mx = -INFINITY, sum = 0.0f, wmax = 0.0f;
                for (int t = t0; t < len; t++)
                    if (a[t] > mx) mx = a[t];
                for (int t = t0; t < len; t++) {
                    float e = slmc_i8kv_exp2(a[t] - mx), sv = slmc_i8kv_unhalf(v0 + (size_t)t * row + hd);
                    sum += e;
                    a[t] = e * sv;
                    if (a[t] > wmax) wmax = a[t];
                }
                float *oh = o0 + (size_t)j * hd;
                if (!(wmax > 0.0f)) { /* every value zero */
                    for (int i = 0; i < hd; i++) oh[i] = 0.0f;
                    continue;
                }
                float inv = (float)qm / wmax, f = (wmax / (float)qm) / sum;
                for (int i = 0; i < hd; i++) acc[i] = 0;
                for (int t = t0; t < len; t++) {
                    const int8_t *v = v0 + (size_t)t * row;
                    int32_t w = (int32_t)(a[t] * inv + 0.5f);
                    for (int i = 0; i < hd; i++) acc[i] += w * v[i];
                }
                for (int i = 0; i < hd; i++) oh[i] = (float)acc[i] * f;
            }
        }
    }
}
