#include "slmc_kernels.h"
#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#endif

/* linear_q8.c for the host-native target (gcc -march=native). The integer dot product of each group is exact
 * in any order; here 32 products a step, four per int32 lane, as |x| (u8) times w * sign(x) (s8): AVX-512 VNNI
 * (vpdpbusd on 256-bit registers, with AVX-512VL) or AVX-VNNI where the compiler's predefined macros say the
 * build machine has them, else AVX2 (vpmaddubsw, then vpmaddwd by 1: |x| * |w| <= 127 * 127, so a pair's sum
 * never saturates int16; q8 values lie in [-127, 127]), chosen when the program is BUILT as onnxruntime's MLAS
 * chooses at run time. Four weight rows share every activation load.
 * NOT bit-identical to linear_q8.c: each group's int32 lane sums are converted to float and multiplied by the
 * two scales in vector lanes, and the lanes are added at the end, so the float sum over the groups is
 * reassociated (and fused multiply-adds round once). Groups that are multiples of 32 take the vector loop;
 * groups of 4 too (one lane is one group's sum, 8 groups a step); other groups take linear_q8.c's loop. */
#if defined(__AVX2__) && defined(__FMA__)
#if defined(__AVX512VNNI__) && defined(__AVX512VL__)
#define Q8N_DOT(acc, ax, sw) _mm256_dpbusd_epi32(acc, ax, sw)
#elif defined(__AVXVNNI__)
#define Q8N_DOT(acc, ax, sw) _mm256_dpbusd_avx_epi32(acc, ax, sw)
#else
#define Q8N_DOT(acc, ax, sw) _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(ax, sw), _mm256_set1_epi16(1)))
#endif

static inline float q8n_hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}

/* d[r] = sum over groups g of (int sum of group g of w[r] . x) * ws[r][g] * xs[g], r < R (1 or 4, constant per
 * copy); w's rows are k bytes apart, ws's rows ng floats apart; group % 32 == 0 */
static inline __attribute__((always_inline)) void q8n_dot32(float *d, const int8_t *w, const float *ws, const int8_t *x,
                                                           const float *xs, int k, int group, const int R) {
    int ng = k / group;
    __m256 f[4];
    for (int r = 0; r < R; r++) f[r] = _mm256_setzero_ps();
    for (int g = 0; g < ng; g++) {
        __m256i a[4];
        for (int r = 0; r < R; r++) a[r] = _mm256_setzero_si256();
        for (int j = g * group; j < (g + 1) * group; j += 32) {
            __m256i xv = _mm256_loadu_si256((const __m256i *)(x + j)), ax = _mm256_abs_epi8(xv);
            for (int r = 0; r < R; r++)
                a[r] = Q8N_DOT(a[r], ax, _mm256_sign_epi8(_mm256_loadu_si256((const __m256i *)(w + (size_t)r * k + j)), xv));
        }
        for (int r = 0; r < R; r++)
            f[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(a[r]), _mm256_set1_ps(ws[(size_t)r * ng + g] * xs[g]), f[r]);
    }
    for (int r = 0; r < R; r++) d[r] = q8n_hsum(f[r]);
}

/* the same for groups of 4: lane l of a step's int32 sums is group (j / 4 + l)'s whole sum */
static inline __attribute__((always_inline)) void q8n_dot4(float *d, const int8_t *w, const float *ws, const int8_t *x,
                                                          const float *xs, int k, const int R) {
    int ng = k / 4, j = 0;
    __m256 f[4];
    for (int r = 0; r < R; r++) f[r] = _mm256_setzero_ps();
    for (; j + 32 <= k; j += 32) {
        __m256i xv = _mm256_loadu_si256((const __m256i *)(x + j)), ax = _mm256_abs_epi8(xv);
        __m256 xsv = _mm256_loadu_ps(xs + j / 4);
        for (int r = 0; r < R; r++) {
            __m256i a = Q8N_DOT(_mm256_setzero_si256(), ax, _mm256_sign_epi8(_mm256_loadu_si256((const __m256i *)(w + (size_t)r * k + j)), xv));
            f[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(a), _mm256_mul_ps(_mm256_loadu_ps(ws + (size_t)r * ng + j / 4), xsv), f[r]);
        }
    }
    for (int r = 0; r < R; r++) {
        float t = q8n_hsum(f[r]);
        for (int g = j / 4; g < ng; g++) {
            int32_t iv = 0;
            for (int jj = 4 * g; jj < 4 * g + 4; jj++) iv += (int32_t)x[jj] * w[(size_t)r * k + jj];
            t += (float)iv * ws[(size_t)r * ng + g] * xs[g];
        }
        d[r] = t;
    }
}
#define Q8N_VECTOR 1
#endif

static float q8n_dot_plain(const int8_t *w, const float *ws, const int8_t *x, const float *xs, int k, int group) {
    int ng = k / group;
    float val = 0.0f;
    for (int g = 0; g < ng; g++) {
        int32_t iv = 0;
        for (int j = g * group; j < (g + 1) * group; j++) iv += (int32_t)x[j] * w[j];
        val += ((float)iv) * ws[g] * xs[g];
    }
    return val;
}

void slmc_linear_q8_native(float *out, const int8_t *xq, const float *xs, const int8_t *wq, const float *ws,
                           const float *b, int n, int k, int m, int group) {
    int ng = k / group;
    float d[4];
    for (int i = 0; i < m; i += 4) {
        int r = m - i < 4 ? m - i : 4;
        const int8_t *wr = wq + (size_t)i * k;
        const float *wsr = ws + (size_t)i * ng;
        for (int s = 0; s < n; s++) {
            const int8_t *x = xq + (size_t)s * k;
            const float *xsr = xs + (size_t)s * ng;
#ifdef Q8N_VECTOR
            if (group % 32 == 0) {
                if (r == 4) q8n_dot32(d, wr, wsr, x, xsr, k, group, 4);
                else for (int t = 0; t < r; t++) q8n_dot32(d + t, wr + (size_t)t * k, wsr + (size_t)t * ng, x, xsr, k, group, 1);
            } else if (group == 4) {
                if (r == 4) q8n_dot4(d, wr, wsr, x, xsr, k, 4);
                else for (int t = 0; t < r; t++) q8n_dot4(d + t, wr + (size_t)t * k, wsr + (size_t)t * ng, x, xsr, k, 1);
            } else
#endif
                for (int t = 0; t < r; t++) d[t] = q8n_dot_plain(wr + (size_t)t * k, wsr + (size_t)t * ng, x, xsr, k, group);
            for (int t = 0; t < r; t++) out[(size_t)s * m + i + t] = d[t] + (b ? b[i + t] : 0.0f);
        }
    }
}
