#include "slmc_kernels.h"
#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#endif

/* attention_f32.c for the host-native target (gcc -march=native), same arguments. With AVX2 + FMA (chosen when
 * the program is BUILT, from the compiler's predefined macros) and head_dim a multiple of 8: the scores of eight
 * positions at once (each q.k in 8-float vectors, the eight sums reduced together by horizontal adds), the
 * softmax's exp as a vector polynomial, and the weighted sum of V with FMAs. On stories260K (head_dim 8) the
 * scalar attention was half of the decode time. NOT bit-identical to attention_f32.c: the scores are summed in
 * another order and multiplied by 1/sqrt(head_dim), and the exp polynomial is within about 2 ulp of expf.
 * Soft-capped scores, other head sizes and machines without AVX2 take attention_f32.c. */
void slmc_attention_f32_heads(float *out, const float *q, const float *kc, const float *vc, float *att,
                              int n, int n_heads, int n_kv_heads, int hd, int pos, int window, float softcap,
                              int h0, int h1);

#if defined(__AVX2__) && defined(__FMA__)
/* exp(x) for x <= 0 (scores minus their maximum): 2^n * p(r), r = x - n ln 2 in [-ln2/2, ln2/2], p of degree 6 */
static inline __m256 attn_exp(__m256 x) {
    x = _mm256_max_ps(x, _mm256_set1_ps(-87.0f));
    __m256 nf = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(nf, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(nf, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f); /* Cephes expf's coefficients */
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(nf), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

/* [sum v0, sum v1, ..., sum v7] */
static inline __m256 attn_hsum8(__m256 v0, __m256 v1, __m256 v2, __m256 v3, __m256 v4, __m256 v5, __m256 v6, __m256 v7) {
    __m256 a = _mm256_hadd_ps(_mm256_hadd_ps(v0, v1), _mm256_hadd_ps(v2, v3));
    __m256 b = _mm256_hadd_ps(_mm256_hadd_ps(v4, v5), _mm256_hadd_ps(v6, v7));
    return _mm256_add_ps(_mm256_permute2f128_ps(a, b, 0x20), _mm256_permute2f128_ps(a, b, 0x31));
}

static inline float attn_hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}

/* q . k for one position, hd a multiple of 8, as a vector whose lanes sum to the score */
static inline __m256 attn_qk(const float *qh, const float *k, int hd) {
    __m256 a = _mm256_mul_ps(_mm256_loadu_ps(qh), _mm256_loadu_ps(k));
    for (int i = 8; i < hd; i += 8) a = _mm256_fmadd_ps(_mm256_loadu_ps(qh + i), _mm256_loadu_ps(k + i), a);
    return a;
}

static void attn_head(float *oh, const float *qh, const float *kc, const float *vc, float *att, int kv_dim, int kvo,
                      int hd, int t0, int len, float inv_scale) {
    int t = t0;
    __m256 mxv = _mm256_set1_ps(-INFINITY), sc = _mm256_set1_ps(inv_scale);
    for (; t + 8 <= len; t += 8) {
        const float *k = kc + (size_t)t * kv_dim + kvo;
        __m256 s = attn_hsum8(attn_qk(qh, k, hd), attn_qk(qh, k + kv_dim, hd), attn_qk(qh, k + 2 * kv_dim, hd),
                              attn_qk(qh, k + 3 * kv_dim, hd), attn_qk(qh, k + 4 * kv_dim, hd),
                              attn_qk(qh, k + 5 * kv_dim, hd), attn_qk(qh, k + 6 * kv_dim, hd),
                              attn_qk(qh, k + 7 * kv_dim, hd));
        s = _mm256_mul_ps(s, sc);
        _mm256_storeu_ps(att + t, s);
        mxv = _mm256_max_ps(mxv, s);
    }
    float mx = -INFINITY, m8[8];
    _mm256_storeu_ps(m8, mxv);
    for (int l = 0; l < 8; l++) mx = m8[l] > mx ? m8[l] : mx;
    for (; t < len; t++) {
        float s = attn_hsum(attn_qk(qh, kc + (size_t)t * kv_dim + kvo, hd)) * inv_scale;
        att[t] = s;
        mx = s > mx ? s : mx;
    }
    __m256 mv = _mm256_set1_ps(mx), sumv = _mm256_setzero_ps();
    for (t = t0; t + 8 <= len; t += 8) {
        __m256 e = attn_exp(_mm256_sub_ps(_mm256_loadu_ps(att + t), mv));
        _mm256_storeu_ps(att + t, e);
        sumv = _mm256_add_ps(sumv, e);
    }
    float sum = attn_hsum(sumv);
    for (; t < len; t++) {
        att[t] = expf(att[t] - mx);
        sum += att[t];
    }
    __m256 inv = _mm256_set1_ps(1.0f / sum);
    for (int i = 0; i < hd; i += 8) {
        /* four FMA chains: with one, the add latency bounds this loop (measured: a third of the attention) */
        __m256 o0 = _mm256_setzero_ps(), o1 = o0, o2 = o0, o3 = o0;
        const float *v = vc + kvo + i;
        int u = t0;
        for (; u + 4 <= len; u += 4) {
            o0 = _mm256_fmadd_ps(_mm256_set1_ps(att[u]), _mm256_loadu_ps(v + (size_t)u * kv_dim), o0);
            o1 = _mm256_fmadd_ps(_mm256_set1_ps(att[u + 1]), _mm256_loadu_ps(v + (size_t)(u + 1) * kv_dim), o1);
            o2 = _mm256_fmadd_ps(_mm256_set1_ps(att[u + 2]), _mm256_loadu_ps(v + (size_t)(u + 2) * kv_dim), o2);
            o3 = _mm256_fmadd_ps(_mm256_set1_ps(att[u + 3]), _mm256_loadu_ps(v + (size_t)(u + 3) * kv_dim), o3);
        }
        for (; u < len; u++) o0 = _mm256_fmadd_ps(_mm256_set1_ps(att[u]), _mm256_loadu_ps(v + (size_t)u * kv_dim), o0);
        _mm256_storeu_ps(oh + i, _mm256_mul_ps(_mm256_add_ps(_mm256_add_ps(o0, o1), _mm256_add_ps(o2, o3)), inv));
    }
}
#endif

void slmc_attention_f32_native(float *out, const float *q, const float *kc, const float *vc, float *att,
                               int n, int n_heads, int n_kv_heads, int hd, int pos, int window, float softcap) {
#if defined(__AVX2__) && defined(__FMA__)
    if (hd % 8 == 0 && softcap <= 0.0f) {
        int kv_dim = n_kv_heads * hd, kv_mul = n_heads / n_kv_heads;
        float inv_scale = 1.0f / sqrtf((float)hd);
        for (int s = 0; s < n; s++) {
            int len = pos + s + 1, t0 = window > 0 && len > window ? len - window : 0;
            for (int h = 0; h < n_heads; h++)
                attn_head(out + (size_t)s * n_heads * hd + (size_t)h * hd, q + (size_t)s * n_heads * hd + (size_t)h * hd,
                          kc, vc, att, kv_dim, (h / kv_mul) * hd, hd, t0, len, inv_scale);
        }
        return;
    }
#endif
    slmc_attention_f32_heads(out, q, kc, vc, att, n, n_heads, n_kv_heads, hd, pos, window, softcap, 0, n_heads);
}
