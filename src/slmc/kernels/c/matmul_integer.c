#include "slmc_kernels.h"

/* ONNX MatMulInteger: y[b] = (a[b] - a_zp) @ (w[b or 0] - w_zp[n]) in exact int32; a [batch, m, k], w [k, n]
 * (shared) or [batch, k, n] (w_batched); at, wt: 2 int8, 3 uint8; w_zp holds one value or one per column
 * (nwz); either zero point may be NULL. */

static inline int32_t ld8(const void *p, int t, size_t i) {
    return t == 2 ? (int32_t)((const int8_t *)p)[i] : (int32_t)((const uint8_t *)p)[i];
}

void slmc_matmul_integer(int32_t *y, const void *a, int at, const void *w, int wt, const void *az, const void *wz,
                         int nwz, size_t batch, size_t m, size_t k, size_t n, int w_batched) {
    int32_t za = az ? ld8(az, at, 0) : 0;
    for (size_t bi = 0; bi < batch; bi++) {
        size_t a0 = bi * m * k, w0 = w_batched ? bi * k * n : 0;
        for (size_t i = 0; i < m; i++)
            for (size_t j = 0; j < n; j++) {
                int32_t zw = wz ? ld8(wz, wt, nwz > 1 ? j : 0) : 0, acc = 0;
                for (size_t p = 0; p < k; p++)
                    acc += (ld8(a, at, a0 + i * k + p) - za) * (ld8(w, wt, w0 + p * n + j) - zw);
                y[(bi * m + i) * n + j] = acc;
            }
    }
}
