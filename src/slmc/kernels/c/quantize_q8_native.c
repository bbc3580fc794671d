#include "slmc_kernels.h"
#if defined(__AVX2__)
#include <immintrin.h>
#endif

/* quantize_q8.c for the host-native target, bit-identical to it: per group, scale = max|x| / 127 and
 * q = roundf(x / scale), eight (AVX2) or four (groups of 4) values at a time when the program is BUILT for a
 * machine with AVX2 (the compiler's predefined macros say so); roundf's halves away from zero are kept: the value
 * truncated toward zero, plus its sign where the dropped fraction is at least one half (exact for |v| < 2^23).
 * On stories260K q8 the scalar quantizer with its roundf calls was a fifth of the decode time. */
#if defined(__AVX2__)
static inline __m128i q8q_round8(__m256 v) {
    __m256 t = _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    __m256 sign = _mm256_and_ps(v, _mm256_set1_ps(-0.0f));
    __m256 half = _mm256_cmp_ps(_mm256_andnot_ps(_mm256_set1_ps(-0.0f), _mm256_sub_ps(v, t)), _mm256_set1_ps(0.5f), _CMP_GE_OQ);
    t = _mm256_add_ps(t, _mm256_and_ps(half, _mm256_or_ps(sign, _mm256_set1_ps(1.0f))));
    __m256i i = _mm256_cvttps_epi32(t);
    __m128i p16 = _mm_packs_epi32(_mm256_castsi256_si128(i), _mm256_extracti128_si256(i, 1));
    return _mm_packs_epi16(p16, p16);
}

static inline int32_t q8q_round4(__m128 v) {
    __m128 t = _mm_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    __m128 sign = _mm_and_ps(v, _mm_set1_ps(-0.0f));
    __m128 half = _mm_cmpge_ps(_mm_andnot_ps(_mm_set1_ps(-0.0f), _mm_sub_ps(v, t)), _mm_set1_ps(0.5f));
    t = _mm_add_ps(t, _mm_and_ps(half, _mm_or_ps(sign, _mm_set1_ps(1.0f))));
    __m128i i = _mm_cvttps_epi32(t);
    __m128i p16 = _mm_packs_epi32(i, i);
    return _mm_cvtsi128_si32(_mm_packs_epi16(p16, p16));
}
#endif

void slmc_quantize_q8_native(int8_t *q, float *s, const float *x, int n, int k, int group) {
    int ng = k / group;
    for (int r = 0; r < n * ng; r++) {
        const float *xg = x + (size_t)r * group;
        int8_t *qg = q + (size_t)r * group;
#if defined(__AVX2__)
        if (group % 8 == 0) {
            __m256 mx = _mm256_setzero_ps();
            for (int i = 0; i < group; i += 8) mx = _mm256_max_ps(mx, _mm256_andnot_ps(_mm256_set1_ps(-0.0f), _mm256_loadu_ps(xg + i)));
            __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(mx), _mm256_extractf128_ps(mx, 1));
            m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
            float wmax = _mm_cvtss_f32(_mm_max_ss(m4, _mm_movehdup_ps(m4)));
            float scale = wmax / 127.0f;
            s[r] = scale;
            if (scale == 0.0f) {
                memset(qg, 0, (size_t)group);
                continue;
            }
            __m256 sc = _mm256_set1_ps(scale);
            for (int i = 0; i < group; i += 8)
                _mm_storel_epi64((__m128i *)(qg + i), q8q_round8(_mm256_div_ps(_mm256_loadu_ps(xg + i), sc)));
            continue;
        }
        if (group == 4) {
            __m128 v = _mm_loadu_ps(xg), a = _mm_andnot_ps(_mm_set1_ps(-0.0f), v);
            a = _mm_max_ps(a, _mm_movehl_ps(a, a));
            float scale = _mm_cvtss_f32(_mm_max_ss(a, _mm_movehdup_ps(a))) / 127.0f;
            s[r] = scale;
            int32_t packed = scale == 0.0f ? 0 : q8q_round4(_mm_div_ps(v, _mm_set1_ps(scale)));
            memcpy(qg, &packed, 4);
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
