#include "slmc_kernels.h"
#include <emmintrin.h>

/* linear_q8.c for x86-64 hosts, bit-identical to it: SSE2 has no int8 multiply-add, so the
 * activations are widened to int16 once per call (into scratch, n*k int16) and every weight vector
 * is sign-extended in registers, then pmaddwd sums pairs of products exactly in int32. The float
 * accumulation keeps runq.c's group order. Groups that are not a multiple of 16 take the plain loop. */
static inline int32_t hsum_epi32(__m128i v) {
    v = _mm_add_epi32(v, _mm_shuffle_epi32(v, 0x4e));
    v = _mm_add_epi32(v, _mm_shuffle_epi32(v, 0xb1));
    return _mm_cvtsi128_si32(v);
}

void slmc_linear_q8_sse2(float *out, const int8_t *xq, const float *xs, const int8_t *wq, const float *ws,
                         const float *b, int16_t *xw, int n, int k, int m, int group) {
    int ng = k / group;
    if (group % 16) {
        for (int i = 0; i < m; i++)
            for (int s = 0; s < n; s++) {
                float val = 0.0f;
                for (int g = 0; g < ng; g++) {
                    int32_t iv = 0;
                    for (int j = g * group; j < (g + 1) * group; j++) iv += (int32_t)xq[(size_t)s * k + j] * wq[(size_t)i * k + j];
                    val += ((float)iv) * ws[(size_t)i * ng + g] * xs[(size_t)s * ng + g];
                }
                out[(size_t)s * m + i] = val + (b ? b[i] : 0.0f);
            }
        return;
    }
    for (size_t t = 0; t < (size_t)n * k; t++) xw[t] = xq[t];
    const __m128i zero = _mm_setzero_si128();
    for (int i = 0; i < m; i++) {
        const int8_t *wr = wq + (size_t)i * k;
        const float *wsr = ws + (size_t)i * ng;
        for (int s = 0; s < n; s++) {
            const int16_t *xr = xw + (size_t)s * k;
            const float *xsr = xs + (size_t)s * ng;
            float val = 0.0f;
            for (int g = 0; g < ng; g++) {
                __m128i acc = zero;
                for (int j = g * group; j < (g + 1) * group; j += 16) {
                    __m128i w = _mm_loadu_si128((const __m128i *)(wr + j));
                    __m128i sign = _mm_cmpgt_epi8(zero, w);
                    acc = _mm_add_epi32(acc, _mm_madd_epi16(_mm_loadu_si128((const __m128i *)(xr + j)),
                                                            _mm_unpacklo_epi8(w, sign)));
                    acc = _mm_add_epi32(acc, _mm_madd_epi16(_mm_loadu_si128((const __m128i *)(xr + j + 8)),
                                                            _mm_unpackhi_epi8(w, sign)));
                }
                val += ((float)hsum_epi32(acc)) * wsr[g] * xsr[g];
            }
            out[(size_t)s * m + i] = val + (b ? b[i] : 0.0f);
        }
    }
}
