#include "slmc_kernels.h"
#include <string.h>

/* quantize_q8.c for x86-64 hosts, bit-identical to it: per group, scale = max|x| / 127 and q = roundf(x / scale),
 * four values a step in SSE2 (every x86-64 has it), without calls to roundf. The largest |x| as the loop keeps it
 * (maxps(|x|, m) is |x| > m ? |x| : m, so a NaN never wins); the same division per value; roundf's halves away
 * from zero: the quotient truncated toward zero (cvttps2dq, as the scalar conversion does), plus its sign where the
 * dropped part is at least one half (that difference is exact for |v| < 2^24; a NaN keeps cvttps2dq's 0x80000000,
 * as cvttss2si gives it); then the low byte of the int32, as (int8_t) of the scalar int32 conversion. Groups that
 * are not a multiple of 4 take quantize_q8.c's loop. */
#if defined(__SSE2__)
#include <emmintrin.h>

static inline float q8s_max4(__m128 m) {  /* the lanes' largest, each compared as the loop compares */
    float l[4], best = 0.0f;
    _mm_storeu_ps(l, m);
    for (int t = 0; t < 4; t++) if (l[t] > best) best = l[t];
    return best;
}

static inline __m128i q8s_round4(__m128 v) {  /* (int32_t)roundf(v), four lanes */
    __m128i t = _mm_cvttps_epi32(v);
    __m128 frac = _mm_sub_ps(v, _mm_cvtepi32_ps(t));
    __m128 half = _mm_cmpge_ps(_mm_andnot_ps(_mm_set1_ps(-0.0f), frac), _mm_set1_ps(0.5f));
    __m128i step = _mm_or_si128(_mm_castps_si128(_mm_cmplt_ps(v, _mm_setzero_ps())), _mm_set1_epi32(1));  /* -1 or 1 */
    return _mm_add_epi32(t, _mm_and_si128(_mm_castps_si128(half), step));
}
#endif

#if defined(__GNUC__) && defined(__x86_64__)
#include <immintrin.h>
#include <stdlib.h>
/* groups of a multiple of 16 in AVX-512, the same steps 16 values at a time: the lanes' maxima hold no NaN (each is
 * max(|x|, m) from 0), so the order they are combined in does not matter; the rounding as q8s_round4's, and the low
 * byte of each int32 by truncation (vpmovdb) */
__attribute__((target("avx512f"))) static void q8s_groups512(int8_t *q, float *s, const float *x, int rows, int group) {
    const __m512 half = _mm512_set1_ps(0.5f);
    for (int r = 0; r < rows; r++) {
        const float *xg = x + (size_t)r * group;
        int8_t *qg = q + (size_t)r * group;
        __m512 m = _mm512_setzero_ps();
        for (int i = 0; i < group; i += 16) m = _mm512_max_ps(_mm512_abs_ps(_mm512_loadu_ps(xg + i)), m);
        float l[16], best = 0.0f;
        _mm512_storeu_ps(l, m);
        for (int t = 0; t < 16; t++) if (l[t] > best) best = l[t];
        float scale = best / 127.0f;
        s[r] = scale;
        if (scale == 0.0f) {
            memset(qg, 0, (size_t)group);
            continue;
        }
        __m512 sc = _mm512_set1_ps(scale);
        for (int i = 0; i < group; i += 16) {
            __m512 v = _mm512_div_ps(_mm512_loadu_ps(xg + i), sc);
            __m512i t = _mm512_cvttps_epi32(v);
            __m512 frac = _mm512_sub_ps(v, _mm512_cvtepi32_ps(t));
            __mmask16 up = _mm512_cmp_ps_mask(_mm512_abs_ps(frac), half, _CMP_GE_OQ);
            __mmask16 neg = _mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_LT_OQ);
            __m512i step = _mm512_mask_blend_epi32(neg, _mm512_set1_epi32(1), _mm512_set1_epi32(-1));
            t = _mm512_mask_add_epi32(t, up, t, step);
            _mm_storeu_si128((__m128i *)(qg + i), _mm512_cvtepi32_epi8(t));
        }
    }
}

static int q8s_path(void) { /* 1: AVX-512 (slmc_x86_avx512f); asked once */
    static int path = -1;
    if (path < 0) path = slmc_x86_avx512f();
    return path;
}
#endif

void slmc_quantize_q8_sse2(int8_t *q, float *s, const float *x, int n, int k, int group) {
    int ng = k / group;
#if defined(__GNUC__) && defined(__x86_64__)
    if (group % 16 == 0 && q8s_path()) {
        q8s_groups512(q, s, x, n * ng, group);
        return;
    }
#endif
    for (int r = 0; r < n * ng; r++) {
        const float *xg = x + (size_t)r * group;
        int8_t *qg = q + (size_t)r * group;
#if defined(__SSE2__)
        if (group % 4 == 0) {
            const __m128 abs = _mm_castsi128_ps(_mm_set1_epi32(0x7fffffff));
            __m128 m = _mm_setzero_ps();
            for (int i = 0; i < group; i += 4) m = _mm_max_ps(_mm_and_ps(_mm_loadu_ps(xg + i), abs), m);
            float scale = q8s_max4(m) / 127.0f;
            s[r] = scale;
            if (scale == 0.0f) {
                memset(qg, 0, (size_t)group);
                continue;
            }
            __m128 sc = _mm_set1_ps(scale);
            const __m128i low = _mm_set1_epi32(0xff);
            int i = 0;
            for (; i + 16 <= group; i += 16) {  /* the low bytes: 0..255 pass both packs unsaturated */
                __m128i a = _mm_and_si128(q8s_round4(_mm_div_ps(_mm_loadu_ps(xg + i), sc)), low);
                __m128i b = _mm_and_si128(q8s_round4(_mm_div_ps(_mm_loadu_ps(xg + i + 4), sc)), low);
                __m128i c = _mm_and_si128(q8s_round4(_mm_div_ps(_mm_loadu_ps(xg + i + 8), sc)), low);
                __m128i d = _mm_and_si128(q8s_round4(_mm_div_ps(_mm_loadu_ps(xg + i + 12), sc)), low);
                _mm_storeu_si128((__m128i *)(qg + i), _mm_packus_epi16(_mm_packs_epi32(a, b), _mm_packs_epi32(c, d)));
            }
            for (; i < group; i += 4) {
                __m128i a = _mm_and_si128(q8s_round4(_mm_div_ps(_mm_loadu_ps(xg + i), sc)), low);
                int32_t packed = _mm_cvtsi128_si32(_mm_packus_epi16(_mm_packs_epi32(a, a), _mm_packs_epi32(a, a)));
                memcpy(qg + i, &packed, 4);
            }
            continue;
        }
#endif
        float wmax = 0.0f;
        for (int i = 0; i < group; i++) {
            float v = fabsf(xg[i]);
            if (v > wmax) wmax = v;
        }
        float scale = wmax / 127.0f;
        s[r] = scale;
        for (int i = 0; i < group; i++) qg[i] = scale == 0.0f ? 0 : (int8_t)roundf(xg[i] / scale);
    }
}
