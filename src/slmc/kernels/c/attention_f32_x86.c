#include "slmc_kernels.h"
#include <stdlib.h>
#if defined(__GNUC__) && !defined(__clang__)
/* the same bits under any flags: no multiply-add is fused into one rounding */
#pragma GCC optimize("fp-contract=off")
#endif

/* attention_f32.c for x86-64 hosts (the default host build, batched and unbatched), same arguments, bit-identical
 * to it: every score, probability and output element goes through the same float operations in the same order,
 * only several of them at once. Scores: SIMD lanes over positions, each lane summing its own position's
 * q[0]*k[0] + q[1]*k[1] + ... from 0.0f in the scalar order (AVX-512 with head_dim a multiple of 16: 16 positions'
 * keys loaded as rows and transposed in registers, 16 dimensions at a time, 1.3x faster than gathering them; else
 * gathered with the cache's stride), then divided by sqrt(head_dim) as the scalar kernel divides. The maximum per
 * lane keeps a score only when it is greater (NaNs never), like the scalar `if (score > mx)`: the lanes can only
 * disagree with the scalar order on the sign of a zero maximum, and x - (+0) and x - (-0) differ only for a zero x,
 * where expf gives 1 either way. exp and the sum: the scalar loop itself (libm's expf per score, summed in
 * position order). Normalisation: lanes over positions, the same division. Weighted sum: lanes over head
 * dimensions, each output element summed from 0.0f over positions in order, a * v then +, as the scalar kernel.
 * Paths, checked at run time (SLMC_NO_AVX512, SLMC_NO_AVX2, SLMC_NO_SSE2 in the environment turn one off, for
 * the tests): AVX-512 (16 positions at a time), AVX2 (8, gathered), SSE2 (4, loaded one by one), and attention_f32.c
 * itself elsewhere and for soft-capped scores (tanhf per score). scratch: attention_f32.c's (seq_len floats). */

void slmc_attention_f32_heads(float *out, const float *q, const float *kc, const float *vc, float *att,
                              int n, int n_heads, int n_kv_heads, int hd, int pos, int window, float softcap,
                              int h0, int h1);

#if defined(__GNUC__) && defined(__SSE2__) && defined(__x86_64__)
#include <immintrin.h>
#include <math.h>

/* the maximum of one head's scores from the lanes' maxima, as the scalar loop keeps it */
static float ax_lanes_max(const float *lanes, int w) {
    float mx = -INFINITY;
    for (int l = 0; l < w; l++)
        if (lanes[l] > mx) mx = lanes[l];
    return mx;
}

/* att[t] = expf(att[t] - mx), summed in position order: attention_f32.c's loop */
static float ax_exp_sum(float *att, int t0, int len, float mx) {
    float sum = 0.0f;
    for (int t = t0; t < len; t++) { att[t] = expf(att[t] - mx); sum += att[t]; }
    return sum;
}

#define AX_512 __attribute__((target("avx512f")))
#define AX_ROW(J) ((J) < nr ? _mm512_loadu_ps(k + (J) * (size_t)kv_dim + c) : zero)  /* positions past len: 0 */
AX_512 static void ax_head512(float *oh, const float *qh, const float *kc, const float *vc, float *att, int kv_dim,
                              int kvo, int hd, int t0, int len, float scale) {
    const __m512i idx = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                           _mm512_set1_epi32(kv_dim));
    const __m512 sc = _mm512_set1_ps(scale), zero = _mm512_setzero_ps();
    __m512 mxv = _mm512_set1_ps(-INFINITY);
    for (int t = t0; t < len; t += 16) {
        __mmask16 m = len - t >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (len - t)) - 1);
        const float *k = kc + (size_t)t * kv_dim + kvo;
        __m512 acc = zero;
        if (hd % 16 == 0) {  /* 16 positions x 16 dimensions loaded as rows and transposed: one vector per dimension */
            int nr = len - t < 16 ? len - t : 16;
            for (int c = 0; c < hd; c += 16) {
                __m512 r0 = AX_ROW(0), r1 = AX_ROW(1);
                __m512 r2 = AX_ROW(2), r3 = AX_ROW(3);
                __m512 r4 = AX_ROW(4), r5 = AX_ROW(5);
                __m512 r6 = AX_ROW(6), r7 = AX_ROW(7);
                __m512 r8 = AX_ROW(8), r9 = AX_ROW(9);
                __m512 ra = AX_ROW(10), rb = AX_ROW(11);
                __m512 rc = AX_ROW(12), rd = AX_ROW(13);
                __m512 re = AX_ROW(14), rf = AX_ROW(15);
                __m512 t0 = _mm512_unpacklo_ps(r0, r1), t1 = _mm512_unpackhi_ps(r0, r1);
                __m512 t2 = _mm512_unpacklo_ps(r2, r3), t3 = _mm512_unpackhi_ps(r2, r3);
                __m512 t4 = _mm512_unpacklo_ps(r4, r5), t5 = _mm512_unpackhi_ps(r4, r5);
                __m512 t6 = _mm512_unpacklo_ps(r6, r7), t7 = _mm512_unpackhi_ps(r6, r7);
                __m512 t8 = _mm512_unpacklo_ps(r8, r9), t9 = _mm512_unpackhi_ps(r8, r9);
                __m512 ta = _mm512_unpacklo_ps(ra, rb), tb = _mm512_unpackhi_ps(ra, rb);
                __m512 tc = _mm512_unpacklo_ps(rc, rd), td = _mm512_unpackhi_ps(rc, rd);
                __m512 te = _mm512_unpacklo_ps(re, rf), tf = _mm512_unpackhi_ps(re, rf);
                /* u[g][d]: rows 4g..4g+3, element 4L + d in 128-bit lane L */
                __m512 u00 = _mm512_shuffle_ps(t0, t2, 0x44), u01 = _mm512_shuffle_ps(t0, t2, 0xEE);
                __m512 u02 = _mm512_shuffle_ps(t1, t3, 0x44), u03 = _mm512_shuffle_ps(t1, t3, 0xEE);
                __m512 u10 = _mm512_shuffle_ps(t4, t6, 0x44), u11 = _mm512_shuffle_ps(t4, t6, 0xEE);
                __m512 u12 = _mm512_shuffle_ps(t5, t7, 0x44), u13 = _mm512_shuffle_ps(t5, t7, 0xEE);
                __m512 u20 = _mm512_shuffle_ps(t8, ta, 0x44), u21 = _mm512_shuffle_ps(t8, ta, 0xEE);
                __m512 u22 = _mm512_shuffle_ps(t9, tb, 0x44), u23 = _mm512_shuffle_ps(t9, tb, 0xEE);
                __m512 u30 = _mm512_shuffle_ps(tc, te, 0x44), u31 = _mm512_shuffle_ps(tc, te, 0xEE);
                __m512 u32 = _mm512_shuffle_ps(td, tf, 0x44), u33 = _mm512_shuffle_ps(td, tf, 0xEE);
#define AX_COLS(D)                                                                                          \
                {                                                                                           \
                    __m512 a = _mm512_shuffle_f32x4(u0##D, u1##D, 0x88), b = _mm512_shuffle_f32x4(u0##D, u1##D, 0xDD); \
                    __m512 a2 = _mm512_shuffle_f32x4(u2##D, u3##D, 0x88), b2 = _mm512_shuffle_f32x4(u2##D, u3##D, 0xDD); \
                    col[D] = _mm512_shuffle_f32x4(a, a2, 0x88);                                              \
                    col[8 + D] = _mm512_shuffle_f32x4(a, a2, 0xDD);                                          \
                    col[4 + D] = _mm512_shuffle_f32x4(b, b2, 0x88);                                          \
                    col[12 + D] = _mm512_shuffle_f32x4(b, b2, 0xDD);                                         \
                }
                __m512 col[16];
                AX_COLS(0) AX_COLS(1) AX_COLS(2) AX_COLS(3)
#undef AX_COLS
#pragma GCC unroll 16
                for (int i = 0; i < 16; i++) acc = _mm512_add_ps(acc, _mm512_mul_ps(_mm512_set1_ps(qh[c + i]), col[i]));
            }
        } else
            for (int i = 0; i < hd; i++)
                acc = _mm512_add_ps(acc, _mm512_mul_ps(_mm512_set1_ps(qh[i]), _mm512_mask_i32gather_ps(zero, m, idx, k + i, 4)));
        acc = _mm512_div_ps(acc, sc);
        _mm512_mask_storeu_ps(att + t, m, acc);
        mxv = _mm512_mask_mov_ps(mxv, _mm512_mask_cmp_ps_mask(m, acc, mxv, _CMP_GT_OQ), acc);
    }
    float lanes[16];
    _mm512_storeu_ps(lanes, mxv);
    __m512 sum = _mm512_set1_ps(ax_exp_sum(att, t0, len, ax_lanes_max(lanes, 16)));
    for (int t = t0; t < len; t += 16) {
        __mmask16 m = len - t >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (len - t)) - 1);
        _mm512_mask_storeu_ps(att + t, m, _mm512_div_ps(_mm512_maskz_loadu_ps(m, att + t), sum));
    }
    for (int c = 0; c < hd; c += 64) {  /* up to 4 vectors of output elements, each summed over positions in order */
        __mmask16 mk[4];
        for (int j = 0; j < 4; j++) {
            int r = hd - c - 16 * j;
            mk[j] = r >= 16 ? (__mmask16)0xFFFF : r > 0 ? (__mmask16)((1u << r) - 1) : 0;
        }
        __m512 o0 = zero, o1 = zero, o2 = zero, o3 = zero;
        const float *v = vc + (size_t)t0 * kv_dim + kvo + c;
        for (int t = t0; t < len; t++, v += kv_dim) {
            __m512 a = _mm512_set1_ps(att[t]);
            o0 = _mm512_add_ps(o0, _mm512_mul_ps(a, _mm512_maskz_loadu_ps(mk[0], v)));
            if (mk[1]) o1 = _mm512_add_ps(o1, _mm512_mul_ps(a, _mm512_maskz_loadu_ps(mk[1], v + 16)));
            if (mk[2]) o2 = _mm512_add_ps(o2, _mm512_mul_ps(a, _mm512_maskz_loadu_ps(mk[2], v + 32)));
            if (mk[3]) o3 = _mm512_add_ps(o3, _mm512_mul_ps(a, _mm512_maskz_loadu_ps(mk[3], v + 48)));
        }
        _mm512_mask_storeu_ps(oh + c, mk[0], o0);
        _mm512_mask_storeu_ps(oh + c + 16, mk[1], o1);
        _mm512_mask_storeu_ps(oh + c + 32, mk[2], o2);
        _mm512_mask_storeu_ps(oh + c + 48, mk[3], o3);
    }
}

#define AX_256 __attribute__((target("avx2")))
AX_256 static inline __m256i ax_mask8(int r) { /* lanes 0 .. r-1 on (r may exceed 8 or be <= 0) */
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(r), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

AX_256 static void ax_head256(float *oh, const float *qh, const float *kc, const float *vc, float *att, int kv_dim,
                              int kvo, int hd, int t0, int len, float scale) {
    const __m256i idx = _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32(kv_dim));
    const __m256 sc = _mm256_set1_ps(scale), zero = _mm256_setzero_ps();
    __m256 mxv = _mm256_set1_ps(-INFINITY);
    for (int t = t0; t < len; t += 8) {
        __m256i mi = ax_mask8(len - t);
        __m256 m = _mm256_castsi256_ps(mi);
        const float *k = kc + (size_t)t * kv_dim + kvo;
        __m256 acc = zero;
        for (int i = 0; i < hd; i++)
            acc = _mm256_add_ps(acc, _mm256_mul_ps(_mm256_set1_ps(qh[i]), _mm256_mask_i32gather_ps(zero, k + i, idx, m, 4)));
        acc = _mm256_div_ps(acc, sc);
        _mm256_maskstore_ps(att + t, mi, acc);
        mxv = _mm256_blendv_ps(mxv, acc, _mm256_and_ps(m, _mm256_cmp_ps(acc, mxv, _CMP_GT_OQ)));
    }
    float lanes[8];
    _mm256_storeu_ps(lanes, mxv);
    __m256 sum = _mm256_set1_ps(ax_exp_sum(att, t0, len, ax_lanes_max(lanes, 8)));
    for (int t = t0; t < len; t += 8) {
        __m256i mi = ax_mask8(len - t);
        _mm256_maskstore_ps(att + t, mi, _mm256_div_ps(_mm256_maskload_ps(att + t, mi), sum));
    }
    for (int c = 0; c < hd; c += 32) {
        __m256i mk[4];
        for (int j = 0; j < 4; j++) mk[j] = ax_mask8(hd - c - 8 * j);
        int nv = hd - c >= 32 ? 4 : (hd - c + 7) / 8;
        __m256 o0 = zero, o1 = zero, o2 = zero, o3 = zero;
        const float *v = vc + (size_t)t0 * kv_dim + kvo + c;
        for (int t = t0; t < len; t++, v += kv_dim) {
            __m256 a = _mm256_set1_ps(att[t]);
            o0 = _mm256_add_ps(o0, _mm256_mul_ps(a, _mm256_maskload_ps(v, mk[0])));
            if (nv > 1) o1 = _mm256_add_ps(o1, _mm256_mul_ps(a, _mm256_maskload_ps(v + 8, mk[1])));
            if (nv > 2) o2 = _mm256_add_ps(o2, _mm256_mul_ps(a, _mm256_maskload_ps(v + 16, mk[2])));
            if (nv > 3) o3 = _mm256_add_ps(o3, _mm256_mul_ps(a, _mm256_maskload_ps(v + 24, mk[3])));
        }
        _mm256_maskstore_ps(oh + c, mk[0], o0);
        _mm256_maskstore_ps(oh + c + 8, mk[1], o1);
        _mm256_maskstore_ps(oh + c + 16, mk[2], o2);
        _mm256_maskstore_ps(oh + c + 24, mk[3], o3);
    }
}

/* SSE2: 4 positions (4 output elements) per vector, the keys loaded one by one; the rest as the scalar loops */
static void ax_head128(float *oh, const float *qh, const float *kc, const float *vc, float *att, int kv_dim, int kvo,
                       int hd, int t0, int len, float scale) {
    const __m128 sc = _mm_set1_ps(scale);
    __m128 mxv = _mm_set1_ps(-INFINITY);
    int t = t0;
    for (; t + 4 <= len; t += 4) {
        const float *k = kc + (size_t)t * kv_dim + kvo;
        __m128 acc = _mm_setzero_ps();
        for (int i = 0; i < hd; i++)
            acc = _mm_add_ps(acc, _mm_mul_ps(_mm_set1_ps(qh[i]), _mm_setr_ps(k[i], k[kv_dim + i], k[2 * kv_dim + i],
                                                                                k[3 * kv_dim + i])));
        acc = _mm_div_ps(acc, sc);
        _mm_storeu_ps(att + t, acc);
        __m128 gt = _mm_cmpgt_ps(acc, mxv);
        mxv = _mm_or_ps(_mm_and_ps(gt, acc), _mm_andnot_ps(gt, mxv));
    }
    float lanes[4];
    _mm_storeu_ps(lanes, mxv);
    float mx = ax_lanes_max(lanes, 4);
    for (; t < len; t++) {
        const float *k = kc + (size_t)t * kv_dim + kvo;
        float score = 0.0f;
        for (int i = 0; i < hd; i++) score += qh[i] * k[i];
        score /= scale;
        att[t] = score;
        if (score > mx) mx = score;
    }
    float sum = ax_exp_sum(att, t0, len, mx);
    __m128 sv = _mm_set1_ps(sum);
    for (t = t0; t + 4 <= len; t += 4) _mm_storeu_ps(att + t, _mm_div_ps(_mm_loadu_ps(att + t), sv));
    for (; t < len; t++) att[t] /= sum;
    int c = 0;
    for (; c + 16 <= hd; c += 16) {
        __m128 o0 = _mm_setzero_ps(), o1 = o0, o2 = o0, o3 = o0;
        const float *v = vc + (size_t)t0 * kv_dim + kvo + c;
        for (t = t0; t < len; t++, v += kv_dim) {
            __m128 a = _mm_set1_ps(att[t]);
            o0 = _mm_add_ps(o0, _mm_mul_ps(a, _mm_loadu_ps(v)));
            o1 = _mm_add_ps(o1, _mm_mul_ps(a, _mm_loadu_ps(v + 4)));
            o2 = _mm_add_ps(o2, _mm_mul_ps(a, _mm_loadu_ps(v + 8)));
            o3 = _mm_add_ps(o3, _mm_mul_ps(a, _mm_loadu_ps(v + 12)));
        }
        _mm_storeu_ps(oh + c, o0);
        _mm_storeu_ps(oh + c + 4, o1);
        _mm_storeu_ps(oh + c + 8, o2);
        _mm_storeu_ps(oh + c + 12, o3);
    }
    for (; c + 4 <= hd; c += 4) {
        __m128 o = _mm_setzero_ps();
        const float *v = vc + (size_t)t0 * kv_dim + kvo + c;
        for (t = t0; t < len; t++, v += kv_dim) o = _mm_add_ps(o, _mm_mul_ps(_mm_set1_ps(att[t]), _mm_loadu_ps(v)));
        _mm_storeu_ps(oh + c, o);
    }
    for (; c < hd; c++) {
        float o = 0.0f;
        for (t = t0; t < len; t++) o += att[t] * vc[(size_t)t * kv_dim + kvo + c];
        oh[c] = o;
    }
}

static int ax_path(void) { /* 3: AVX-512, 2: AVX2, 1: SSE2, 0: attention_f32.c; asked once */
    static int path = -1;
    if (path < 0) {
        __builtin_cpu_init();
        int avx2 = !getenv("SLMC_NO_AVX2") && __builtin_cpu_supports("avx2");
        path = avx2 && !getenv("SLMC_NO_AVX512") && __builtin_cpu_supports("avx512f") ? 3
               : avx2 ? 2 : !getenv("SLMC_NO_SSE2");
    }
    return path;
}
#endif

void slmc_attention_f32_x86(float *out, const float *q, const float *kc, const float *vc, float *att, int n,
                            int n_heads, int n_kv_heads, int hd, int pos, int window, float softcap) {
#if defined(__GNUC__) && defined(__SSE2__) && defined(__x86_64__)
    int path = ax_path();
    if (path > 0 && !(softcap > 0.0f)) {
        int kv_dim = n_kv_heads * hd, kv_mul = n_heads / n_kv_heads;
        float scale = sqrtf((float)hd);
        for (int s = 0; s < n; s++) {
            int len = pos + s + 1, t0 = window > 0 && len > window ? len - window : 0;
            for (int h = 0; h < n_heads; h++) {
                const float *qh = q + (size_t)s * n_heads * hd + (size_t)h * hd;
                float *oh = out + (size_t)s * n_heads * hd + (size_t)h * hd;
                int kvo = (h / kv_mul) * hd;
                if (path == 3) ax_head512(oh, qh, kc, vc, att, kv_dim, kvo, hd, t0, len, scale);
                else if (path == 2) ax_head256(oh, qh, kc, vc, att, kv_dim, kvo, hd, t0, len, scale);
                else ax_head128(oh, qh, kc, vc, att, kv_dim, kvo, hd, t0, len, scale);
            }
        }
        return;
    }
#endif
    slmc_attention_f32_heads(out, q, kc, vc, att, n, n_heads, n_kv_heads, hd, pos, window, softcap, 0, n_heads);
}
