#include "slmc_kernels.h"

/* Y[m][n] = bias + A[m][k] X[k][n], all row-major and contiguous, bias one value per row of Y (NULL: 0). The
 * float matrix product behind MatMul, Gemm without transposes and a 1x1 Conv (conv_f32.c: per group, weights
 * times the plane). Worked in blocks of 4 rows x 4 columns held in registers (16 sums, 4 values of A, 4 of X:
 * 24 of the Cortex-M33's 32 single-precision registers), so each loaded value serves four MACs and no sum goes
 * through memory; a loop that streams rows of X into rows of Y pays a load and a store of Y per MAC, and its
 * row overhead per n MACs, which is most of the cost where n is small (the 3x3 planes late in a MobileNet).
 * Each output sums its bias, then its k terms in order: the same result as those loops. */
#define MM_INIT(r) float r##0 = b##r, r##1 = b##r, r##2 = b##r, r##3 = b##r
#define MM_MAC(r, v) r##0 += v * x0; r##1 += v * x1; r##2 += v * x2; r##3 += v * x3
#define MM_PUT(r, yr) yr[0] = r##0; yr[1] = r##1; yr[2] = r##2; yr[3] = r##3

void slmc_mm_f32(float *y, const float *a, const float *x, const float *bias, int32_t m, int32_t k, size_t n) {
    int32_t i = 0;
    for (; i + 4 <= m; i += 4) {
        const float *r0 = a + (size_t)i * k, *r1 = r0 + k, *r2 = r1 + k, *r3 = r2 + k;
        float ba = bias ? bias[i] : 0.0f, bb = bias ? bias[i + 1] : 0.0f;
        float bc = bias ? bias[i + 2] : 0.0f, bd = bias ? bias[i + 3] : 0.0f;
        float *ya = y + (size_t)i * n, *yb = ya + n, *yc = yb + n, *yd = yc + n;
        size_t j = 0;
        for (; j + 4 <= n; j += 4) {
            MM_INIT(a); MM_INIT(b); MM_INIT(c); MM_INIT(d);
            const float *xp = x + j;
            for (int32_t p = 0; p < k; p++, xp += n) {
                float x0 = xp[0], x1 = xp[1], x2 = xp[2], x3 = xp[3];
                float va = r0[p], vb = r1[p], vc = r2[p], vd = r3[p];
                MM_MAC(a, va); MM_MAC(b, vb); MM_MAC(c, vc); MM_MAC(d, vd);
            }
            MM_PUT(a, (ya + j)); MM_PUT(b, (yb + j)); MM_PUT(c, (yc + j)); MM_PUT(d, (yd + j));
        }
        for (; j < n; j++) {
            float sa = ba, sb = bb, sc = bc, sd = bd;
            const float *xp = x + j;
            for (int32_t p = 0; p < k; p++, xp += n) {
                float xv = *xp;
                sa += r0[p] * xv; sb += r1[p] * xv; sc += r2[p] * xv; sd += r3[p] * xv;
            }
            ya[j] = sa; yb[j] = sb; yc[j] = sc; yd[j] = sd;
        }
    }
    for (; i < m; i++) {
        const float *r0 = a + (size_t)i * k;
        float ba = bias ? bias[i] : 0.0f, *ya = y + (size_t)i * n;
        size_t j = 0;
        for (; j + 4 <= n; j += 4) {
            MM_INIT(a);
            const float *xp = x + j;
            for (int32_t p = 0; p < k; p++, xp += n) {
                float x0 = xp[0], x1 = xp[1], x2 = xp[2], x3 = xp[3], va = r0[p];
                MM_MAC(a, va);
            }
            MM_PUT(a, (ya + j));
        }
        for (; j < n; j++) {
            float sa = ba;
            const float *xp = x + j;
            for (int32_t p = 0; p < k; p++, xp += n) sa += r0[p] * *xp;
            ya[j] = sa;
        }
    }
}
