#include "slmc_kernels.h"
#include "slmc_parallel.h"

/* attention_f16kv.c split over the cluster by KV heads (each core converts the cached rows of its
 * own KV heads once for the query heads that share them, as the serial kernel does): its loop body
 * and binary16 conversion repeated here unchanged, the same float operations in the same order, so
 * the same bits. Each core's scores and converted row live in its own part of the scratch. */
static inline float par_f16_to_f32(uint16_t h) {
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

typedef struct {
    float *out;
    const float *q;
    const uint16_t *kc, *vc;
    uint8_t *att;
    int stride, n, n_heads, n_kv_heads, hd, pos;
} par_att16;

static void par_att16_task(void *p, int kh0, int kh1, int core) {
    const par_att16 *j = (const par_att16 *)p;
    int n = j->n, n_heads = j->n_heads, hd = j->hd, pos = j->pos;
    int kv_dim = j->n_kv_heads * hd, kv_mul = n_heads / j->n_kv_heads, stride = pos + n;
    float *att = (float *)(void *)(j->att + (size_t)core * j->stride);
    float *row = att + (size_t)kv_mul * stride;
    float scale = sqrtf((float)hd);
    for (int s = 0; s < n; s++) {
        int len = pos + s + 1;
        for (int kh = kh0; kh < kh1; kh++) {
            const float *q0 = j->q + (size_t)s * n_heads * hd + (size_t)kh * kv_mul * hd;
            float *o0 = j->out + (size_t)s * n_heads * hd + (size_t)kh * kv_mul * hd;
            for (int t = 0; t < len; t++) {
                const uint16_t *k = j->kc + (size_t)t * kv_dim + (size_t)kh * hd;
                for (int i = 0; i < hd; i++) row[i] = par_f16_to_f32(k[i]);
                for (int jj = 0; jj < kv_mul; jj++) {
                    const float *qh = q0 + (size_t)jj * hd;
                    float score = 0.0f;
                    for (int i = 0; i < hd; i++) score += qh[i] * row[i];
                    att[(size_t)jj * stride + t] = score / scale;
                }
            }
            for (int jj = 0; jj < kv_mul; jj++) {
                float *a = att + (size_t)jj * stride, mx = -INFINITY, sum = 0.0f;
                for (int t = 0; t < len; t++)
                    if (a[t] > mx) mx = a[t];
                for (int t = 0; t < len; t++) { a[t] = expf(a[t] - mx); sum += a[t]; }
                for (int t = 0; t < len; t++) a[t] /= sum;
                for (int i = 0; i < hd; i++) o0[(size_t)jj * hd + i] = 0.0f;
            }
            for (int t = 0; t < len; t++) {
                const uint16_t *v = j->vc + (size_t)t * kv_dim + (size_t)kh * hd;
                for (int i = 0; i < hd; i++) row[i] = par_f16_to_f32(v[i]);
                for (int jj = 0; jj < kv_mul; jj++) {
                    float a = att[(size_t)jj * stride + t], *oh = o0 + (size_t)jj * hd;
                    for (int i = 0; i < hd; i++) oh[i] += a * row[i];
                }
            }
        }
    }
}

void slmc_par_attention_f16kv(int stride, int site, float *out, const float *q, const uint16_t *kc, const uint16_t *vc,
                              void *att, int n, int n_heads, int n_kv_heads, int hd, int pos) {
    par_att16 j = {out, q, kc, vc, (uint8_t *)att, stride, n, n_heads, n_kv_heads, hd, pos};
    slmc_parallel_for(par_att16_task, &j, n_kv_heads, site);
}
