#include "slmc_kernels.h"
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

/* linear_f32.c for the n rows of a batched step (slmc compile --batch), bit-identical to it row by row:
 * several token rows share every weight load, and each row keeps slmc_dot_f32's eight partial sums
 * a0..a7 (lane l of a row's two vectors is a_l and a_(4+l)), its tail into a0 and its final order, so
 * each output is the very same float sum. On SSE2 four token rows at a time, in intrinsics (gcc -O2 does
 * not vectorize the shared loop as it does slmc_dot_f32's); elsewhere two, in plain C. Measured on a
 * 768 x 288 matrix (x86-64, gcc 12 -O2, shared machine): 0.050 ns per MAC for 4 to 16 rows against
 * linear_f32.c's 0.080. */
static inline float dot_end(float a[8], const float *wr, const float *x, int j, int k) {
    for (; j < k; j++) a[0] += wr[j] * x[j];
    return ((a[0] + a[4]) + (a[1] + a[5])) + ((a[2] + a[6]) + (a[3] + a[7]));
}

#if defined(__SSE2__)
/* r (2..4) token rows from x (row stride k), R (2 or 4) computed; rows past r repeat row 0 and are not stored */
static inline __attribute__((always_inline)) void dotr_f32(float *d, const float *wr, const float *x, int r, int k,
                                                           const int R) {
    const float *x0 = x, *x1 = x + (r > 1 ? k : 0), *x2 = x + (r > 2 ? 2 * k : 0), *x3 = x + (r > 3 ? 3 * k : 0);
    __m128 a0 = _mm_setzero_ps(), b0 = a0, a1 = a0, b1 = a0, a2 = a0, b2 = a0, a3 = a0, b3 = a0;
    int j = 0;
    for (; j + 8 <= k; j += 8) {
        __m128 wl = _mm_loadu_ps(wr + j), wh = _mm_loadu_ps(wr + j + 4);
        a0 = _mm_add_ps(a0, _mm_mul_ps(wl, _mm_loadu_ps(x0 + j))), b0 = _mm_add_ps(b0, _mm_mul_ps(wh, _mm_loadu_ps(x0 + j + 4)));
        a1 = _mm_add_ps(a1, _mm_mul_ps(wl, _mm_loadu_ps(x1 + j))), b1 = _mm_add_ps(b1, _mm_mul_ps(wh, _mm_loadu_ps(x1 + j + 4)));
        if (R > 2) {
            a2 = _mm_add_ps(a2, _mm_mul_ps(wl, _mm_loadu_ps(x2 + j))), b2 = _mm_add_ps(b2, _mm_mul_ps(wh, _mm_loadu_ps(x2 + j + 4)));
            a3 = _mm_add_ps(a3, _mm_mul_ps(wl, _mm_loadu_ps(x3 + j))), b3 = _mm_add_ps(b3, _mm_mul_ps(wh, _mm_loadu_ps(x3 + j + 4)));
        }
    }
    float s[4][8];
    _mm_storeu_ps(s[0], a0), _mm_storeu_ps(s[0] + 4, b0), _mm_storeu_ps(s[1], a1), _mm_storeu_ps(s[1] + 4, b1);
    _mm_storeu_ps(s[2], a2), _mm_storeu_ps(s[2] + 4, b2), _mm_storeu_ps(s[3], a3), _mm_storeu_ps(s[3] + 4, b3);
    for (int t = 0; t < r; t++) d[t] = dot_end(s[t], wr, x + (size_t)t * k, j, k);
}

static void dot4_f32(float *d, const float *wr, const float *x, int r, int k) {
    if (r == 1) d[0] = slmc_dot_f32(wr, x, k);
    else if (r == 2) dotr_f32(d, wr, x, r, k, 2);
    else dotr_f32(d, wr, x, r, k, 4);
}
#define SLMC_F32_ROWS 4
#else
static void dot4_f32(float *d, const float *wr, const float *x, int r, int k) {
    const float *x1 = x + (r > 1 ? k : 0);
    float a[8] = {0}, c[8] = {0};
    int j = 0;
    for (; j + 8 <= k; j += 8)
        for (int l = 0; l < 8; l++) {
            float w = wr[j + l];
            a[l] += w * x[j + l];
            c[l] += w * x1[j + l];
        }
    d[0] = dot_end(a, wr, x, j, k);
    if (r > 1) d[1] = dot_end(c, wr, x1, j, k);
}
#define SLMC_F32_ROWS 2
#endif

void slmc_linear_f32_rows(float *out, const float *x, const float *w, const float *b, int n, int k, int m) {
    for (int i = 0; i < m; i++) {
        const float *wr = w + (size_t)i * k;
        float bias = b ? b[i] : 0.0f, d[4];
        for (int s = 0; s < n; s += SLMC_F32_ROWS) {
            int r = n - s < SLMC_F32_ROWS ? n - s : SLMC_F32_ROWS;
            dot4_f32(d, wr, x + (size_t)s * k, r, k);
            for (int t = 0; t < r; t++) out[(size_t)(s + t) * m + i] = d[t] + bias;
        }
    }
}
