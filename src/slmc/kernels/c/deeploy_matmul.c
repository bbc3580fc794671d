#include "slmc_kernels.h"

/* MatMul on integer data (Deeploy's integer networks, and ONNX MatMul on int32/int64): operands of any
 * integer type, exact sums in int64 stored to the output type (which the importer proved holds them;
 * for ONNX int32 data the store wraps modulo 2^32, as ONNX runtimes do). Batched with numpy
 * broadcasting like matmul_f32.c: bstr holds the out, a and b batch strides in elements. The int8 x
 * int8 and uint8 x int8 products of requantized networks have typed loops. */

#define SLMC_MAX_RANK 8
int slmc_nd_next(int32_t *idx, const int32_t *shape, int dims, ptrdiff_t *off, const int32_t *str, int ld, int nops);

#define SLMC_MM_TYPED(NAME, TA, TB)                                                                    \
    static void NAME(int32_t *o, const TA *a, const TB *b, int m, int k, int n) {                     \
        for (int i = 0; i < m; i++) {                                                                \
            int32_t *orow = o + (size_t)i * n;                                                       \
            for (int j = 0; j < n; j++) orow[j] = 0;                                                 \
            for (int p = 0; p < k; p++) {                                                            \
                int32_t av = a[(size_t)i * k + p];                                                   \
                const TB *brow = b + (size_t)p * n;                                                  \
                for (int j = 0; j < n; j++) orow[j] += av * brow[j];                                 \
            }                                                                                        \
        }                                                                                            \
    }
SLMC_MM_TYPED(mm_i8_i8, int8_t, int8_t)
SLMC_MM_TYPED(mm_u8_i8, uint8_t, int8_t)

static void mm_any(void *o, int ot, size_t oo, const void *a, int at, size_t ao, const void *b, int bt, size_t bo,
                   int m, int k, int n) {
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            int64_t acc = 0;
            for (int p = 0; p < k; p++) acc += slmc_ldt(a, at, ao + (size_t)i * k + p) * slmc_ldt(b, bt, bo + (size_t)p * n + j);
            slmc_stt(o, ot, oo + (size_t)i * n + j, acc);
        }
}

void slmc_int_matmul(void *out, int ot, const void *a, int at, const void *b, int bt, int m, int k, int n, int brank,
                     const int32_t *bshape, const int32_t *bstr) {
    int32_t idx[SLMC_MAX_RANK] = {0};
    ptrdiff_t off[3] = {0, 0, 0};
    do {
        if (ot == 6 && at == 2 && bt == 2)
            mm_i8_i8((int32_t *)out + off[0], (const int8_t *)a + off[1], (const int8_t *)b + off[2], m, k, n);
        else if (ot == 6 && at == 3 && bt == 2)
            mm_u8_i8((int32_t *)out + off[0], (const uint8_t *)a + off[1], (const int8_t *)b + off[2], m, k, n);
        else
            mm_any(out, ot, off[0], a, at, off[1], b, bt, off[2], m, k, n);
    } while (slmc_nd_next(idx, bshape, brank, off, bstr, brank, 3));
}
