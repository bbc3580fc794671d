#include "slmc_kernels.h"

/* out = silu(g) * u, the SwiGLU gate, in llama2.c's order of operations. */
#if defined(__GNUC__) && defined(__x86_64__)
#include <immintrin.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
/* x86-64 hosts with AVX-512: the same operations 16 values at a time, bit for bit: expf of each -g, then 1 + e,
 * 1 / that, g * that and times u, each one IEEE operation per lane as the loop does. The expf is glibc's (2.27 on,
 * sysdeps/ieee754/flt-32/e_expf.c) as its FMA build __expf_fma computes it, which x86-64 glibc runs on any CPU
 * with FMA: in double, k = round(x * 32 / ln 2) by adding 1.5 * 2^52 (one FMA), r = x * 32 / ln 2 - k (one FMA),
 * 2^(k/32) from a 32-entry table plus k << 47 in the exponent, a degree-3 polynomial in r (three FMAs), one
 * rounding to float; |x| >= 88, infinities and NaNs go to libm's expf itself. The constants are glibc's
 * __exp2f_data. Whether this libm's expf is that one is checked once per process on 8,192 inputs (all 32 table
 * entries, both rounding directions, the special-case bounds); on any difference every value takes libm's expf,
 * as before. tests/kernels/test_swiglu_f32_avx512.py compares it with libm's expf on all 2^32 inputs. */
static const uint64_t sw_tab[32] = {
    0x3ff0000000000000, 0x3fefd9b0d3158574, 0x3fefb5586cf9890f, 0x3fef9301d0125b51, 0x3fef72b83c7d517b,
    0x3fef54873168b9aa, 0x3fef387a6e756238, 0x3fef1e9df51fdee1, 0x3fef06fe0a31b715, 0x3feef1a7373aa9cb,
    0x3feedea64c123422, 0x3feece086061892d, 0x3feebfdad5362a27, 0x3feeb42b569d4f82, 0x3feeab07dd485429,
    0x3feea47eb03a5585, 0x3feea09e667f3bcd, 0x3fee9f75e8ec5f74, 0x3feea11473eb0187, 0x3feea589994cce13,
    0x3feeace5422aa0db, 0x3feeb737b0cdc5e5, 0x3feec49182a3f090, 0x3feed503b23e255d, 0x3feee89f995ad3ad,
    0x3feeff76f2fb5e47, 0x3fef199bdd85529c, 0x3fef3720dcef9069, 0x3fef5818dcfba487, 0x3fef7c97337b9b5f,
    0x3fefa4afa2a490da, 0x3fefd0765b6e4540};

#define SW_512 __attribute__((target("avx512f")))
SW_512 static inline __m256 sw_exp8(__m256 x) { /* 8 lanes of the main path (|x| < 88) */
    const __m512d invln2n = _mm512_set1_pd(0x1.71547652b82fep+5), shift = _mm512_set1_pd(0x1.8p+52);
    const __m512d c0 = _mm512_set1_pd(0x1.c6af84b912394p-20), c1 = _mm512_set1_pd(0x1.ebfce50fac4f3p-13);
    const __m512d c2 = _mm512_set1_pd(0x1.62e42ff0c52d6p-6), one = _mm512_set1_pd(1.0);
    __m512d xd = _mm512_cvtps_pd(x);
    __m512d kd = _mm512_fmadd_pd(invln2n, xd, shift);
    __m512i ki = _mm512_castpd_si512(kd);
    kd = _mm512_sub_pd(kd, shift);
    __m512d r = _mm512_fmsub_pd(invln2n, xd, kd);
    __m512i idx = _mm512_and_si512(ki, _mm512_set1_epi64(31));
    __m512i lo = _mm512_permutex2var_epi64(_mm512_loadu_si512(sw_tab), idx, _mm512_loadu_si512(sw_tab + 8));
    __m512i hi = _mm512_permutex2var_epi64(_mm512_loadu_si512(sw_tab + 16), idx, _mm512_loadu_si512(sw_tab + 24));
    __m512i t = _mm512_mask_blend_epi64(_mm512_test_epi64_mask(idx, _mm512_set1_epi64(16)), lo, hi);
    __m512d s = _mm512_castsi512_pd(_mm512_add_epi64(t, _mm512_slli_epi64(ki, 47)));
    __m512d z = _mm512_fmadd_pd(c0, r, c1);
    __m512d r2 = _mm512_mul_pd(r, r);
    __m512d y = _mm512_fmadd_pd(c2, r, one);
    y = _mm512_fmadd_pd(z, r2, y);
    return _mm512_cvtpd_ps(_mm512_mul_pd(y, s));
}

SW_512 static inline __m512 sw_exp16(__m512 x) { /* expf of 16 lanes: the main path, libm for the special ones */
    __m256 hi = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(x), 1));
    __m512 y = _mm512_castpd_ps(_mm512_insertf64x4(_mm512_castps_pd(_mm512_castps256_ps512(sw_exp8(_mm512_castps512_ps256(x)))),
                                                   _mm256_castps_pd(sw_exp8(hi)), 1));
    __m512i top = _mm512_and_si512(_mm512_srli_epi32(_mm512_castps_si512(x), 20), _mm512_set1_epi32(0x7ff));
    __mmask16 sp = _mm512_cmpgt_epu32_mask(top, _mm512_set1_epi32(0x42a));
    if (sp) {
        float xs[16], ys[16];
        _mm512_storeu_ps(xs, x);
        _mm512_storeu_ps(ys, y);
        for (int l = 0; l < 16; l++)
            if (sp >> l & 1) ys[l] = expf(xs[l]);
        y = _mm512_loadu_ps(ys);
    }
    return y;
}

/* the inputs of the once-per-process check: every table entry at both ends of its interval, and values across
 * [-88, 88] and around the special-case bounds */
SW_512 static int sw_exp_matches_libm(void) {
    float x[8192], y[16];
    int n = 0;
    for (int k = -90 * 32; k <= 90 * 32 && n < 8192 - 64; k += 3) {
        float v = (float)k * 0.02166084939249829f;  /* near k * ln2 / 32: both sides of the rounding to k */
        x[n++] = v;
        x[n++] = nextafterf(v, 1e9f);
    }
    while (n < 8192) x[n] = (float)(n * 7919 % 17600 - 8800) * 0.01f, n++;
    for (int i = 0; i < 8192; i += 16) {
        _mm512_storeu_ps(y, sw_exp16(_mm512_loadu_ps(x + i)));
        for (int l = 0; l < 16; l++) {
            float e = expf(x[i + l]);
            if (memcmp(&e, &y[l], 4)) return 0;
        }
    }
    return 1;
}

SW_512 static int swiglu512(float *out, const float *g, const float *u, int count) {
    const __m512 one = _mm512_set1_ps(1.0f);
    int i = 0;
    for (; i + 16 <= count; i += 16) {
        __m512 v = _mm512_loadu_ps(g + i), uv = _mm512_loadu_ps(u + i);
        /* -g: the sign bit flipped, as the unary minus does (0 - g would differ on zeros and NaNs) */
        __m512 e = sw_exp16(_mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(v), _mm512_set1_epi32((int)0x80000000u))));
        v = _mm512_mul_ps(v, _mm512_div_ps(one, _mm512_add_ps(one, e)));
        _mm512_storeu_ps(out + i, _mm512_mul_ps(v, uv));
    }
    return i;
}

static int swiglu_path(void) { /* 1: AVX-512 (slmc_x86_avx512f) with an expf equal to libm's; asked once */
    static int path = -1;
    if (path < 0) path = slmc_x86_avx512f() && sw_exp_matches_libm();
    return path;
}
#endif

void slmc_swiglu_f32(float *out, const float *g, const float *u, int count) {
    int i = 0;
#if defined(__GNUC__) && defined(__x86_64__)
    if (swiglu_path()) i = swiglu512(out, g, u, count);
#endif
    for (; i < count; i++) {
        float v = g[i];
        v = v * (1.0f / (1.0f + expf(-v)));
        out[i] = v * u[i];
    }
}
