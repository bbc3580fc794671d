#include "slmc_kernels.h"

/* Gemm on integer data: out = alpha * A' B' + beta * C with integer alpha and beta, operands of any
 * integer type read through strides (transA/transB cost nothing), C broadcast through its strides
 * (NULL: no C); exact sums in int64 stored to the output type the importer proved. */

void slmc_int_gemm(void *out, int ot, const void *a, int at, const void *b, int bt, const void *c, int ct, int m,
                   int k, int n, int a_rs, int a_cs, int b_rs, int b_cs, int c_rs, int c_cs, int64_t alpha,
                   int64_t beta) {
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            int64_t acc = 0;
            for (int p = 0; p < k; p++)
                acc += slmc_ldt(a, at, (size_t)i * a_rs + (size_t)p * a_cs) * slmc_ldt(b, bt, (size_t)p * b_rs + (size_t)j * b_cs);
            acc *= alpha;
            if (c) acc += beta * slmc_ldt(c, ct, (size_t)i * c_rs + (size_t)j * c_cs);
            slmc_stt(out, ot, (size_t)i * n + j, acc);
        }
}
