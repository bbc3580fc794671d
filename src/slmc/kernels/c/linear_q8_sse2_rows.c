#include "slmc_kernels.h"
#include <emmintrin.h>
#include <stdlib.h>

/* linear_q8_sse2.c for the n rows of a batched step (slmc compile --batch), bit-identical to it row by
 * row: each weight vector is loaded and sign-extended once and multiplied into up to four token rows
 * at a time (their int32 group sums in registers), and two weight rows share every activation vector
 * loaded, instead of one weight row per token row. The int32 sum of a group is exact in any order; the
 * float rescale and accumulation keep runq.c's group order per row. Activations are widened to int16
 * once per call (scratch, n*k int16) as in linear_q8_sse2.c. Measured on a 768 x 288 matrix with groups
 * of 32 (x86-64, gcc 12 -O2, 4 to 16 rows, ns per MAC): linear_q8_sse2.c 0.080; here SSE2 0.043, AVX2
 * 0.033, AVX-VNNI 0.025 (benchmarks/batch_kernels.py). */
#define Q8R_MADD(A, X, J) A = _mm_add_epi32(_mm_add_epi32(A, _mm_madd_epi16(_mm_loadu_si128((const __m128i *)((X) + (J))), wl)), \
                                            _mm_madd_epi16(_mm_loadu_si128((const __m128i *)((X) + (J) + 8)), wh))

/* The four int32 group sums of a0..a3 (one vector per token row) as one vector [sum a0, .., sum a3]: exact
 * integer adds, in any order the same sums */
static inline __m128i hsum4(__m128i a0, __m128i a1, __m128i a2, __m128i a3) {
    __m128i s01 = _mm_add_epi32(_mm_unpacklo_epi32(a0, a1), _mm_unpackhi_epi32(a0, a1));
    __m128i s23 = _mm_add_epi32(_mm_unpacklo_epi32(a2, a3), _mm_unpackhi_epi32(a2, a3));
    return _mm_add_epi32(_mm_unpacklo_epi64(s01, s23), _mm_unpackhi_epi64(s01, s23));
}

/* R (1, 2 or 4, a constant in each copy) token rows, r of them real, of output column i. The rescale of the four rows is one vector
 * operation each: (float)sum, * ws, * xs, + into val, lane by lane the scalar operations of
 * linear_q8_sse2.c, in the same order (IEEE single precision, round to nearest, as the scalar ones) */
static inline __attribute__((always_inline)) void q8_sse2_rows(float *out, const int16_t *xw, const float *xs,
                                                               const int8_t *wr, const float *wsr, float bias, int s0,
                                                               int r, int k, int m, int ng, int group, int i, const int R) {
    const __m128i zero = _mm_setzero_si128();
    const int16_t *x0 = xw + (size_t)s0 * k, *x1 = x0 + (r > 1 ? k : 0), *x2 = x0 + (r > 2 ? 2 * k : 0),
                  *x3 = x0 + (r > 3 ? 3 * k : 0);
    const float *xs0 = xs + (size_t)s0 * ng, *xs1 = xs0 + (r > 1 ? ng : 0), *xs2 = xs0 + (r > 2 ? 2 * ng : 0),
                *xs3 = xs0 + (r > 3 ? 3 * ng : 0);
    __m128 v = _mm_setzero_ps();
    for (int g = 0; g < ng; g++) {
        __m128i a0 = zero, a1 = zero, a2 = zero, a3 = zero;
        for (int j = g * group; j < (g + 1) * group; j += 16) {
            __m128i w = _mm_loadu_si128((const __m128i *)(wr + j));
            __m128i sign = _mm_cmpgt_epi8(zero, w);
            __m128i wl = _mm_unpacklo_epi8(w, sign), wh = _mm_unpackhi_epi8(w, sign);
            Q8R_MADD(a0, x0, j);
            if (R > 1) Q8R_MADD(a1, x1, j);  /* rows past r repeat row 0; their lanes are not stored */
            if (R > 2) Q8R_MADD(a2, x2, j), Q8R_MADD(a3, x3, j);
        }
        __m128 f = _mm_mul_ps(_mm_cvtepi32_ps(hsum4(a0, a1, a2, a3)), _mm_set1_ps(wsr[g]));
        v = _mm_add_ps(v, _mm_mul_ps(f, _mm_set_ps(xs3[g], xs2[g], xs1[g], xs0[g])));
    }
    float o[4];
    _mm_storeu_ps(o, _mm_add_ps(v, _mm_set1_ps(bias)));
    for (int t = 0; t < r; t++) out[(size_t)(s0 + t) * m + i] = o[t];
}

/* four token rows of two output columns i, i + 1 (weight rows wr, wr + k): every activation vector loaded is
 * used for both, every weight vector widened for all four token rows */
static void q8_sse2_rows4x2(float *out, const int16_t *xw, const float *xs, const int8_t *wr, const float *wsr,
                            const float *bias, int s0, int k, int m, int ng, int group, int i) {
    const __m128i zero = _mm_setzero_si128();
    const int16_t *x0 = xw + (size_t)s0 * k, *x1 = x0 + k, *x2 = x1 + k, *x3 = x2 + k;
    const float *xs0 = xs + (size_t)s0 * ng, *xs1 = xs0 + ng, *xs2 = xs1 + ng, *xs3 = xs2 + ng;
    const int8_t *wr1 = wr + k;
    __m128 v = _mm_setzero_ps(), u = _mm_setzero_ps();
    for (int g = 0; g < ng; g++) {
        __m128i a0 = zero, a1 = zero, a2 = zero, a3 = zero, c0 = zero, c1 = zero, c2 = zero, c3 = zero;
        for (int j = g * group; j < (g + 1) * group; j += 16) {
            __m128i w = _mm_loadu_si128((const __m128i *)(wr + j)), w1 = _mm_loadu_si128((const __m128i *)(wr1 + j));
            __m128i sign = _mm_cmpgt_epi8(zero, w), sign1 = _mm_cmpgt_epi8(zero, w1);
            __m128i wl = _mm_unpacklo_epi8(w, sign), wh = _mm_unpackhi_epi8(w, sign);
            __m128i vl = _mm_unpacklo_epi8(w1, sign1), vh = _mm_unpackhi_epi8(w1, sign1);
#define Q8R_MADD2(A, C, X)                                                                                     \
    do {                                                                                                       \
        __m128i lo = _mm_loadu_si128((const __m128i *)((X) + j)), hi = _mm_loadu_si128((const __m128i *)((X) + j + 8)); \
        A = _mm_add_epi32(_mm_add_epi32(A, _mm_madd_epi16(lo, wl)), _mm_madd_epi16(hi, wh));                   \
        C = _mm_add_epi32(_mm_add_epi32(C, _mm_madd_epi16(lo, vl)), _mm_madd_epi16(hi, vh));                   \
    } while (0)
            Q8R_MADD2(a0, c0, x0);
            Q8R_MADD2(a1, c1, x1);
            Q8R_MADD2(a2, c2, x2);
            Q8R_MADD2(a3, c3, x3);
#undef Q8R_MADD2
        }
        __m128 xsg = _mm_set_ps(xs3[g], xs2[g], xs1[g], xs0[g]);
        v = _mm_add_ps(v, _mm_mul_ps(_mm_mul_ps(_mm_cvtepi32_ps(hsum4(a0, a1, a2, a3)), _mm_set1_ps(wsr[g])), xsg));
        u = _mm_add_ps(u, _mm_mul_ps(_mm_mul_ps(_mm_cvtepi32_ps(hsum4(c0, c1, c2, c3)), _mm_set1_ps(wsr[ng + g])), xsg));
    }
    float o[4], p[4];
    _mm_storeu_ps(o, _mm_add_ps(v, _mm_set1_ps(bias[0])));
    _mm_storeu_ps(p, _mm_add_ps(u, _mm_set1_ps(bias[1])));
    for (int t = 0; t < 4; t++) out[(size_t)(s0 + t) * m + i] = o[t], out[(size_t)(s0 + t) * m + i + 1] = p[t];
}

static void q8_sse2_rows4(float *out, const int16_t *xw, const float *xs, const int8_t *wr, const float *wsr,
                          float bias, int s0, int r, int k, int m, int ng, int group, int i) {
    if (r > 2) q8_sse2_rows(out, xw, xs, wr, wsr, bias, s0, r, k, m, ng, group, i, 4);
    else if (r == 2) q8_sse2_rows(out, xw, xs, wr, wsr, bias, s0, r, k, m, ng, group, i, 2);
    else q8_sse2_rows(out, xw, xs, wr, wsr, bias, s0, r, k, m, ng, group, i, 1);
}


#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
/* AVX2 and AVX-VNNI, where the CPU has them (checked at run time, so the generated C still assumes only
 * SSE2; SLMC_NO_VNNI / SLMC_NO_AVX2 in the environment turn a path off, for tests/batch): 32 products per
 * step as |x| (u8) times w * sign(x) (s8), summed by adjacent pairs in int16 then in int32 (vpmaddubsw,
 * vpmaddwd by 1: at most 2 * 128 * 127 = 32512, no saturation) or by fours in int32 (vpdpbusd). w * sign(x)
 * never overflows because q8 weights lie in [-127, 127] (quant/q8.py clips them). The group sums are the same
 * exact integers, and the rescale is the SSE2 path's. Groups that are multiples of 32; four token rows by
 * two weight rows a step, the activations read as int8 in place (no widening). */
#include <immintrin.h>
#define SLMC_AVX2 __attribute__((target("avx2")))

SLMC_AVX2 static inline __m128i hsum4_256(__m256i a0, __m256i a1, __m256i a2, __m256i a3) {
    return hsum4(_mm_add_epi32(_mm256_castsi256_si128(a0), _mm256_extracti128_si256(a0, 1)),
                 _mm_add_epi32(_mm256_castsi256_si128(a1), _mm256_extracti128_si256(a1, 1)),
                 _mm_add_epi32(_mm256_castsi256_si128(a2), _mm256_extracti128_si256(a2, 1)),
                 _mm_add_epi32(_mm256_castsi256_si128(a3), _mm256_extracti128_si256(a3, 1)));
}

/* r (1..4) token rows from s0 (rows past r repeat row s0, not stored) times weight rows i .. i + c - 1 (c: 1 or 2) */
/* One step of 32 columns of a token row X for weight rows w and w1 into A and C: |x| (u8) times w * sign(x)
 * (s8), MAC adding adjacent products into int32 lanes */
#define Q8A_ROW(A, C, X, MAC)                                                                                      \
    do {                                                                                                           \
        __m256i x = _mm256_loadu_si256((const __m256i *)((X) + j)), ax = _mm256_abs_epi8(x);                       \
        MAC(A, ax, _mm256_sign_epi8(w, x));                                                                        \
        MAC(C, ax, _mm256_sign_epi8(w1, x));                                                                       \
    } while (0)
/* AVX2: pairs summed in int16 (vpmaddubsw), then in int32 (vpmaddwd by 1); AVX-VNNI: four at once in int32 */
#define Q8A_MAC_avx2(A, AX, SW) A = _mm256_add_epi32(A, _mm256_madd_epi16(_mm256_maddubs_epi16(AX, SW), ones))
#define Q8A_MAC_vnni(A, AX, SW) A = _mm256_dpbusd_avx_epi32(A, AX, SW)

/* q8_rows_S: r (1..4) token rows from s0 (R of them computed, rows past r repeat row s0 and are not stored)
 * times weight rows i .. i + c - 1 (c: 1 or 2); q8_linear_S: the whole product */
#define Q8A_DEFINE(S, TARGET)                                                                                      \
    __attribute__((target(TARGET))) static inline __attribute__((always_inline)) void q8_rows_##S(                \
        float *out, const int8_t *xq, const float *xs, const int8_t *wr, const float *wsr, const float *bias,      \
        int s0, int r, int c, int k, int m, int ng, int group, int i, const int R) {                               \
        const __m256i ones = _mm256_set1_epi16(1);                                                                 \
        const int8_t *x0 = xq + (size_t)s0 * k, *x1 = x0 + (r > 1 ? k : 0), *x2 = x0 + (r > 2 ? 2 * k : 0),       \
                     *x3 = x0 + (r > 3 ? 3 * k : 0), *wr1 = wr + (c > 1 ? k : 0);                                  \
        const float *xs0 = xs + (size_t)s0 * ng, *xs1 = xs0 + (r > 1 ? ng : 0), *xs2 = xs0 + (r > 2 ? 2 * ng : 0), \
                    *xs3 = xs0 + (r > 3 ? 3 * ng : 0);                                                             \
        __m128 v = _mm_setzero_ps(), u = _mm_setzero_ps();                                                         \
        (void)ones;                                                                                                \
        for (int g = 0; g < ng; g++) {                                                                             \
            __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0, c0 = a0, c1 = a0, c2 = a0, c3 = a0;   \
            for (int j = g * group; j < (g + 1) * group; j += 32) {                                                \
                __m256i w = _mm256_loadu_si256((const __m256i *)(wr + j));                                         \
                __m256i w1 = _mm256_loadu_si256((const __m256i *)(wr1 + j));                                       \
                Q8A_ROW(a0, c0, x0, Q8A_MAC_##S);                                                                  \
                if (R > 1) Q8A_ROW(a1, c1, x1, Q8A_MAC_##S);                                                       \
                if (R > 2) {                                                                                       \
                    Q8A_ROW(a2, c2, x2, Q8A_MAC_##S);                                                              \
                    Q8A_ROW(a3, c3, x3, Q8A_MAC_##S);                                                              \
                }                                                                                                  \
            }                                                                                                      \
            __m128 xsg = _mm_set_ps(xs3[g], xs2[g], xs1[g], xs0[g]);                                               \
            v = _mm_add_ps(v, _mm_mul_ps(_mm_mul_ps(_mm_cvtepi32_ps(hsum4_256(a0, a1, a2, a3)),                    \
                                                    _mm_set1_ps(wsr[g])), xsg));                                   \
            u = _mm_add_ps(u, _mm_mul_ps(_mm_mul_ps(_mm_cvtepi32_ps(hsum4_256(c0, c1, c2, c3)),                    \
                                                    _mm_set1_ps(wsr[(c > 1 ? ng : 0) + g])), xsg));                \
        }                                                                                                          \
        float o[4], p[4];                                                                                          \
        _mm_storeu_ps(o, _mm_add_ps(v, _mm_set1_ps(bias[0])));                                                     \
        _mm_storeu_ps(p, _mm_add_ps(u, _mm_set1_ps(bias[c > 1 ? 1 : 0])));                                         \
        for (int t = 0; t < r; t++) {                                                                              \
            out[(size_t)(s0 + t) * m + i] = o[t];                                                                  \
            if (c > 1) out[(size_t)(s0 + t) * m + i + 1] = p[t];                                                   \
        }                                                                                                          \
    }                                                                                                              \
    __attribute__((target(TARGET))) static void q8_linear_##S(float *out, const int8_t *xq, const float *xs,       \
                                                              const int8_t *wq, const float *ws, const float *b,   \
                                                              int n, int k, int m, int group) {                    \
        int ng = k / group;                                                                                        \
        for (int i = 0; i < m; i += 2) {                                                                           \
            int c = m - i < 2 ? 1 : 2;                                                                             \
            float bias[2] = {b ? b[i] : 0.0f, b && c > 1 ? b[i + 1] : 0.0f};                                       \
            const int8_t *wr = wq + (size_t)i * k;                                                                 \
            const float *wsr = ws + (size_t)i * ng;                                                                \
            for (int s = 0; s < n; s += 4) {                                                                       \
                int r = n - s < 4 ? n - s : 4;                                                                     \
                if (r > 2) q8_rows_##S(out, xq, xs, wr, wsr, bias, s, r, c, k, m, ng, group, i, 4);                \
                else if (r == 2) q8_rows_##S(out, xq, xs, wr, wsr, bias, s, r, c, k, m, ng, group, i, 2);          \
                else q8_rows_##S(out, xq, xs, wr, wsr, bias, s, r, c, k, m, ng, group, i, 1);                      \
            }                                                                                                      \
        }                                                                                                          \
    }
Q8A_DEFINE(avx2, "avx2")
Q8A_DEFINE(vnni, "avx2,avxvnni")
#define SLMC_HAVE_AVX2_PATH 1
#endif

void slmc_linear_q8_sse2(float *out, const int8_t *xq, const float *xs, const int8_t *wq, const float *ws,
                         const float *b, int16_t *xw, int n, int k, int m, int group);

void slmc_linear_q8_sse2_rows(float *out, const int8_t *xq, const float *xs, const int8_t *wq, const float *ws,
                              const float *b, int16_t *xw, int n, int k, int m, int group) {
    if (n == 1) { /* one row: nothing to share */
        slmc_linear_q8_sse2(out, xq, xs, wq, ws, b, xw, n, k, m, group);
        return;
    }
#ifdef SLMC_HAVE_AVX2_PATH
    if (group % 32 == 0 && !getenv("SLMC_NO_AVX2") && __builtin_cpu_supports("avx2")) {
        if (!getenv("SLMC_NO_VNNI") && __builtin_cpu_supports("avxvnni")) q8_linear_vnni(out, xq, xs, wq, ws, b, n, k, m, group);
        else q8_linear_avx2(out, xq, xs, wq, ws, b, n, k, m, group);
        return;
    }
#endif
    int ng = k / group;
    if (group % 16) { /* as linear_q8_sse2.c: the plain loop */
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
    int i = 0;
    for (; i + 2 <= m; i += 2) {  /* two output columns at a time while four token rows remain */
        const int8_t *wr = wq + (size_t)i * k;
        const float *wsr = ws + (size_t)i * ng;
        float bias[2] = {b ? b[i] : 0.0f, b ? b[i + 1] : 0.0f};
        int s = 0;
        for (; s + 4 <= n; s += 4) q8_sse2_rows4x2(out, xw, xs, wr, wsr, bias, s, k, m, ng, group, i);
        for (int c = 0; c < 2 && s < n; c++)
            q8_sse2_rows4(out, xw, xs, wr + (size_t)c * k, wsr + (size_t)c * ng, bias[c], s, n - s, k, m, ng, group, i + c);
    }
    for (; i < m; i++) {
        const int8_t *wr = wq + (size_t)i * k;
        const float *wsr = ws + (size_t)i * ng;
        float bias = b ? b[i] : 0.0f;
        for (int s = 0; s < n; s += 4)
            q8_sse2_rows4(out, xw, xs, wr, wsr, bias, s, n - s < 4 ? n - s : 4, k, m, ng, group, i);
    }
}
