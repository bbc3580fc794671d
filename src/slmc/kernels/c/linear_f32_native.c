#include "slmc_kernels.h"
#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#endif

/* linear_f32.c for the host-native target (gcc -march=native): out[s][i] = sum_j x[s][j] * w[i][j] (+ b[i]).
 * The vector ISA is chosen when the program is BUILT, from the compiler's predefined macros (as onnxruntime's
 * MLAS chooses at run time): AVX-512F (16 floats), else AVX2 + FMA (8 floats), else the portable slmc_dot_f32.
 * Eight weight rows at a time share every activation load.
 * NOT bit-identical to linear_f32.c: fused multiply-adds round once per product-sum, and the partial sums
 * are added in another order; the result agrees with the numpy reference to float rounding (tests check a
 * relative tolerance). */
#if defined(__AVX512F__)
#define F32N_W 16
typedef __m512 f32n_v;
#define F32N_LOAD(p) _mm512_loadu_ps(p)
#define F32N_FMA(a, b, c) _mm512_fmadd_ps(a, b, c)
#define F32N_ZERO() _mm512_setzero_ps()
#define F32N_HSUM(v) _mm512_reduce_add_ps(v)
#define F32N_HALF(v) _mm256_add_ps(_mm512_castps512_ps256(v), _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)))  /* AVX-512F only */
#elif defined(__AVX2__) && defined(__FMA__)
#define F32N_W 8
typedef __m256 f32n_v;
#define F32N_LOAD(p) _mm256_loadu_ps(p)
#define F32N_FMA(a, b, c) _mm256_fmadd_ps(a, b, c)
#define F32N_ZERO() _mm256_setzero_ps()
#define F32N_HALF(v) (v)
static inline float f32n_hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}
#define F32N_HSUM(v) f32n_hsum(v)
#endif

#ifdef F32N_W
/* d[r] = w[r] . x for r < R (R: 1 or 8, a constant in each inlined copy); w's rows are k floats apart. Eight rows
 * are eight independent FMA chains (enough to hide the FMA latency on two FMA ports), and their eight sums are
 * reduced together (a transposing tree of horizontal adds) rather than one by one. */
static inline __attribute__((always_inline)) void f32n_dot(float *d, const float *w, const float *x, int k, const int R) {
    f32n_v a[8];
    for (int r = 0; r < R; r++) a[r] = F32N_ZERO();
    int j = 0;
    for (; j + F32N_W <= k; j += F32N_W) {
        f32n_v x0 = F32N_LOAD(x + j);
        for (int r = 0; r < R; r++) {
            /* the block of rows after the next into L1: about 0.95 -> 0.75 s for 256 positions of stories15M
             * (60 MB of weights a token, streamed from L3; busy machine, medians of 7); a prefetch past the
             * matrix's end never faults */
            if (R > 1 && (F32N_W == 16 || (j & 15) == 0)) _mm_prefetch((const char *)(w + (size_t)(r + 2 * R) * k + j), _MM_HINT_T0);
            a[r] = F32N_FMA(F32N_LOAD(w + (size_t)r * k + j), x0, a[r]);
        }
    }
#if defined(__AVX512F__)
    if (j < k) { /* the last k % 16 columns through a masked load */
        __mmask16 mk = (__mmask16)((1u << (k - j)) - 1u);
        __m512 x0 = _mm512_maskz_loadu_ps(mk, x + j);
        for (int r = 0; r < R; r++) a[r] = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mk, w + (size_t)r * k + j), x0, a[r]);
        j = k;
    }
#endif
    float t[8];
    if (R == 8) {
        __m256 h[8];
        for (int r = 0; r < 8; r++) h[r] = F32N_HALF(a[r]);
        __m256 p = _mm256_hadd_ps(_mm256_hadd_ps(h[0], h[1]), _mm256_hadd_ps(h[2], h[3]));
        __m256 q = _mm256_hadd_ps(_mm256_hadd_ps(h[4], h[5]), _mm256_hadd_ps(h[6], h[7]));
        _mm256_storeu_ps(t, _mm256_add_ps(_mm256_permute2f128_ps(p, q, 0x20), _mm256_permute2f128_ps(p, q, 0x31)));
    } else {
        for (int r = 0; r < R; r++) t[r] = F32N_HSUM(a[r]);
    }
    for (int r = 0; r < R; r++) {
        for (int jj = j; jj < k; jj++) t[r] += w[(size_t)r * k + jj] * x[jj];
        d[r] = t[r];
    }
}
#endif

/* d[0 .. r-1] = w[0 .. r-1] . x (r: 1 to 8 weight rows, k floats apart); linear_swiglu_f32_native.c calls it too */
void slmc_dotn_f32_native(float *d, const float *w, const float *x, int k, int r) {
#ifdef F32N_W
    if (r == 8) {
        f32n_dot(d, w, x, k, 8);
        return;
    }
    for (int t = 0; t < r; t++) f32n_dot(d + t, w + (size_t)t * k, x, k, 1);
#else
    for (int t = 0; t < r; t++) d[t] = slmc_dot_f32(w + (size_t)t * k, x, k);
#endif
}

void slmc_linear_f32_native(float *out, const float *x, const float *w, const float *b, int n, int k, int m) {
    float d[8];
    for (int i = 0; i < m; i += 8) {
        int r = m - i < 8 ? m - i : 8;
        const float *wr = w + (size_t)i * k;
        for (int s = 0; s < n; s++) { /* the block of weight rows (4 k floats) stays in L1 over the token rows */
            slmc_dotn_f32_native(d, wr, x + (size_t)s * k, k, r);
            for (int t = 0; t < r; t++) out[(size_t)s * m + i + t] = d[t] + (b ? b[i + t] : 0.0f);
        }
    }
}
