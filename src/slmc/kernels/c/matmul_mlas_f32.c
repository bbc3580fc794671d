#include "slmc_kernels.h"

/* host-native builds pass -ffp-contract=fast: MLAS's M=1 and N=1 kernels round each product, then each sum */
#pragma GCC optimize("fp-contract=off")

#define SLMC_MAX_RANK 8
int slmc_nd_next(int32_t *idx, const int32_t *shape, int dims, ptrdiff_t *off, const int32_t *str, int ld, int nops);

/* ONNX MatMul as onnxruntime 1.32's CPU provider sums it on x86-64 (MLAS, sgemm.cpp; ir/numerics.py's
 * mlas_sgemm_path picks the path and K block at compile time; reference/onnx_ort_ops.py is the twin):
 * path 1, M = 1 (SgemmKernelM1Avx): y[j] = sum over k in groups of 4 (then 2, then 1) of
 *   (((a0 b0 + a1 b1) + a2 b2) + a3 b3), each group added to y[j];
 * path 2, N = 1 (SgemmKernelM1TransposeBAvx with A and B swapped): 8 lanes along k, then a reduction that
 *   depends on the row's place: rows in groups of 4, then a pair, then a single row;
 * path 0 (the AVX512F/FMA3 kernel): per output one fused multiply-add chain from 0 per K block of kb, the
 *   blocks' sums added in order. */

static void m1(float *y, const float *a, const float *b, int k, int n) {
    for (int j = 0; j < n; j++) y[j] = 0.0f;
    int p = 0;
    for (; p + 4 <= k; p += 4) {
        const float *b0 = b + (size_t)p * n, *b1 = b0 + n, *b2 = b1 + n, *b3 = b2 + n;
        for (int j = 0; j < n; j++) {
            float t = a[p] * b0[j];
            t = t + a[p + 1] * b1[j];
            t = t + a[p + 2] * b2[j];
            t = t + a[p + 3] * b3[j];
            y[j] = t + y[j];
        }
    }
    if (k & 2) {
        const float *b0 = b + (size_t)p * n, *b1 = b0 + n;
        for (int j = 0; j < n; j++) y[j] = (a[p] * b0[j] + a[p + 1] * b1[j]) + y[j];
        p += 2;
    }
    if (k & 1)
        for (int j = 0; j < n; j++) y[j] = a[p] * b[(size_t)p * n + j] + y[j];
}

/* The 8 lane sums of x . w: lane l takes the terms k = l mod 8; a lane past the tail adds +0 (masked loads). */
static void lanes8(float *l, const float *x, const float *w, int k) {
    for (int i = 0; i < 8; i++) l[i] = 0.0f;
    int p = 0;
    for (; p + 8 <= k; p += 8)
        for (int i = 0; i < 8; i++) l[i] = l[i] + x[p + i] * w[p + i];
    if (p < k)
        for (int i = 0; i < 8; i++) l[i] = l[i] + (p + i < k ? x[p + i] * w[p + i] : 0.0f);
}

static void n1(float *y, const float *a, const float *b, int m, int k) {
    float l[8];
    int i = 0;
    for (; i < (m & ~3); i++) {  /* rows of a group of 4: the lanes transposed, then added in lane order */
        lanes8(l, a + (size_t)i * k, b, k);
        y[i] = ((((l[0] + l[1]) + l[2]) + l[3]) + (((l[4] + l[5]) + l[6]) + l[7])) + 0.0f;
    }
    if (m & 2)
        for (int r = 0; r < 2; r++, i++) {  /* a pair: unpack-interleaved lanes */
            lanes8(l, a + (size_t)i * k, b, k);
            y[i] = (((l[0] + l[2]) + (l[4] + l[6])) + ((l[1] + l[3]) + (l[5] + l[7]))) + 0.0f;
        }
    if (m & 1) {  /* a single row: horizontal adds */
        lanes8(l, a + (size_t)i * k, b, k);
        y[i] = (((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7]))) + 0.0f;
    }
}

static void blocked(float *y, const float *a, const float *b, int m, int k, int n, int kb) {
    for (int k0 = 0; k0 < k; k0 += kb) {
        int kc = k - k0 < kb ? k - k0 : kb;
        for (int i = 0; i < m; i++) {
            const float *ar = a + (size_t)i * k + k0;
            float *yr = y + (size_t)i * n;
            int j = 0;
            for (; j + 4 <= n; j += 4) {
                const float *bp = b + (size_t)k0 * n + j;
                float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;
                for (int p = 0; p < kc; p++, bp += n) {
                    float v = ar[p];
                    s0 = slmc_fmaf(v, bp[0], s0); s1 = slmc_fmaf(v, bp[1], s1);
                    s2 = slmc_fmaf(v, bp[2], s2); s3 = slmc_fmaf(v, bp[3], s3);
                }
                if (k0) { s0 = s0 + yr[j]; s1 = s1 + yr[j + 1]; s2 = s2 + yr[j + 2]; s3 = s3 + yr[j + 3]; }
                yr[j] = s0; yr[j + 1] = s1; yr[j + 2] = s2; yr[j + 3] = s3;
            }
            for (; j < n; j++) {
                const float *bp = b + (size_t)k0 * n + j;
                float s = 0.0f;
                for (int p = 0; p < kc; p++, bp += n) s = slmc_fmaf(ar[p], *bp, s);
                yr[j] = k0 ? s + yr[j] : s;
            }
        }
    }
    if (k == 0)
        for (size_t i = 0; i < (size_t)m * n; i++) y[i] = 0.0f;
}

static void product(float *y, const float *a, const float *b, int m, int k, int n, int path, int kb) {
    if (path == 1) m1(y, a, b, k, n);
    else if (path == 2) n1(y, a, b, m, k);
    else blocked(y, a, b, m, k, n, kb);
}

/* A batch of products broadcast as matmul_f32.c's (a 2-D B has its A's batch merged into m by the caller, as
 * onnxruntime's MatMulComputeHelper does). */
void slmc_matmul_mlas_f32(float *out, const float *a, const float *b, int m, int k, int n, int path, int kb, int brank,
                          const int32_t *bshape, const int32_t *bstr) {
    int32_t idx[SLMC_MAX_RANK] = {0};
    ptrdiff_t off[3] = {0, 0, 0};
    do product(out + off[0], a + off[1], b + off[2], m, k, n, path, kb);
    while (slmc_nd_next(idx, bshape, brank, off, bstr, brank, 3));
}
