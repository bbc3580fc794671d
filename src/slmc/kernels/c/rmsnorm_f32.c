#include "slmc_kernels.h"

/* Reads the whole row before writing it, so out may equal x. */
#if defined(__GNUC__) && defined(__x86_64__)
#include <immintrin.h>
#include <stdlib.h>
/* x86-64 hosts with AVX-512, several rows (a batched step): the same operations, bit for bit, with a lane per row
 * for the sum of squares (each lane adds its own row's x * x in the loop's order: the loop waits on that one chain
 * of adds) and for the scale (the division, +, sqrtf and 1 / that are single IEEE operations in both), then 16
 * elements of a row at a time for w * (ss * x) */
__attribute__((target("avx512f"))) static void rms512(float *out, const float *x, const float *w, int n, int dim,
                                                      float eps) {
    const __m512i idx = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                           _mm512_set1_epi32(dim));
    for (int s0 = 0; s0 < n; s0 += 16) {
        int rows = n - s0 < 16 ? n - s0 : 16;
        __mmask16 m = rows == 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << rows) - 1);
        const float *xb = x + (size_t)s0 * dim;
        __m512 ss = _mm512_setzero_ps();
        for (int j = 0; j < dim; j++) {
            __m512 v = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), m, idx, xb + j, 4);
            ss = _mm512_add_ps(ss, _mm512_mul_ps(v, v));
        }
        ss = _mm512_div_ps(ss, _mm512_set1_ps((float)dim));
        ss = _mm512_add_ps(ss, _mm512_set1_ps(eps));
        ss = _mm512_div_ps(_mm512_set1_ps(1.0f), _mm512_sqrt_ps(ss));
        float scale[16];
        _mm512_storeu_ps(scale, ss);
        for (int r = 0; r < rows; r++) {
            const float *xr = xb + (size_t)r * dim;
            float *o = out + (size_t)(s0 + r) * dim;
            __m512 sc = _mm512_set1_ps(scale[r]);
            int j = 0;
            for (; j + 16 <= dim; j += 16)
                _mm512_storeu_ps(o + j, _mm512_mul_ps(_mm512_loadu_ps(w + j), _mm512_mul_ps(sc, _mm512_loadu_ps(xr + j))));
            for (; j < dim; j++) o[j] = w[j] * (scale[r] * xr[j]);
        }
    }
}

static int rms_path(void) { /* 1: AVX-512 (slmc_x86_avx512f); asked once */
    static int path = -1;
    if (path < 0) path = slmc_x86_avx512f();
    return path;
}
#endif

void slmc_rmsnorm_f32(float *out, const float *x, const float *w, int n, int dim, float eps) {
#if defined(__GNUC__) && defined(__x86_64__)
    if (n > 1 && rms_path()) {
        rms512(out, x, w, n, dim, eps);
        return;
    }
#endif
    for (int s = 0; s < n; s++) {
        const float *xr = x + (size_t)s * dim;
        float *o = out + (size_t)s * dim;
        float ss = 0.0f;
        for (int j = 0; j < dim; j++) ss += xr[j] * xr[j];
        ss /= (float)dim;
        ss += eps;
        ss = 1.0f / sqrtf(ss);
        for (int j = 0; j < dim; j++) o[j] = w[j] * (ss * xr[j]);
    }
}
