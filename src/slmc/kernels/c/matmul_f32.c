#include "slmc_kernels.h"

#define SLMC_MAX_RANK 8
int slmc_nd_next(int32_t *idx, const int32_t *shape, int dims, ptrdiff_t *off, const int32_t *str, int ld, int nops);

void slmc_mm_f32(float *y, const float *a, const float *x, const float *bias, int32_t m, int32_t k, size_t n);

/* One (m x k) @ (k x n) product, row-major and contiguous: register-blocked in mm_f32.c. Each output sums in
 * k order from 0. */
static void mm(float *o, const float *a, const float *b, int m, int k, int n) {
    slmc_mm_f32(o, a, b, NULL, m, k, (size_t)n);
}

/* ONNX MatMul: a batch of products with numpy broadcasting over the batch axes. bshape holds the
 * (merged) batch axes, bstr the out, a and b batch strides (brank each, in elements). */
void slmc_matmul_f32(float *out, const float *a, const float *b, int m, int k, int n, int brank, const int32_t *bshape,
                     const int32_t *bstr) {
    int32_t idx[SLMC_MAX_RANK] = {0};
    ptrdiff_t off[3] = {0, 0, 0};
    do mm(out + off[0], a + off[1], b + off[2], m, k, n);
    while (slmc_nd_next(idx, bshape, brank, off, bstr, brank, 3));
}

/* ONNX Gemm: out = alpha * A' B' + beta * C, with A' (m x k) and B' (k x n) read through strides
 * (so transA/transB cost nothing) and C broadcast through its strides (NULL: no C). */
void slmc_gemm_f32(float *out, const float *a, const float *b, const float *c, int m, int k, int n, int a_rs, int a_cs,
                   int b_rs, int b_cs, int c_rs, int c_cs, float alpha, float beta) {
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            float acc = 0.0f;
            for (int p = 0; p < k; p++) acc += a[(ptrdiff_t)i * a_rs + (ptrdiff_t)p * a_cs] * b[(ptrdiff_t)p * b_rs + (ptrdiff_t)j * b_cs];
            float v = alpha * acc;
            if (c) v += beta * c[(ptrdiff_t)i * c_rs + (ptrdiff_t)j * c_cs];
            out[(size_t)i * n + j] = v;
        }
}
