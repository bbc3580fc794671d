#include "slmc_kernels.h"

/* ONNX CumSum along one axis of x viewed as [outer, n, inner]: out[o][j][i] = sum of x[o][t][i] for t
 * up to j (t < j when exclusive; from the end when reverse). Sums run in the element type, in order
 * along the axis; integers wrap around (computed unsigned: signed overflow is undefined in C). Each
 * element is read before the one at its position is written. */
#define SLMC_CUMSUM(T, A)                                                                             \
    static void cumsum_##T(T *out, const T *x, int outer, int n, int inner, int exclusive, int reverse) { \
        for (int o = 0; o < outer; o++)                                                               \
            for (int i = 0; i < inner; i++) {                                                         \
                A acc = 0;                                                                            \
                for (int t = 0; t < n; t++) {                                                         \
                    size_t at = ((size_t)o * n + (size_t)(reverse ? n - 1 - t : t)) * inner + i;      \
                    A v = (A)x[at];                                                                   \
                    if (!exclusive) acc += v;                                                         \
                    out[at] = (T)acc;                                                                 \
                    if (exclusive) acc += v;                                                          \
                }                                                                                     \
            }                                                                                         \
    }
SLMC_CUMSUM(float, float)
SLMC_CUMSUM(double, double)
SLMC_CUMSUM(int32_t, uint32_t)
SLMC_CUMSUM(uint32_t, uint32_t)
SLMC_CUMSUM(int64_t, uint64_t)
SLMC_CUMSUM(uint64_t, uint64_t)

void slmc_cumsum_f32(float *out, const float *x, int outer, int n, int inner, int exclusive, int reverse) {
    cumsum_float(out, x, outer, n, inner, exclusive, reverse);
}
void slmc_cumsum_f64(double *out, const double *x, int outer, int n, int inner, int exclusive, int reverse) {
    cumsum_double(out, x, outer, n, inner, exclusive, reverse);
}
void slmc_cumsum_i32(int32_t *out, const int32_t *x, int outer, int n, int inner, int exclusive, int reverse) {
    cumsum_int32_t(out, x, outer, n, inner, exclusive, reverse);
}
void slmc_cumsum_u32(uint32_t *out, const uint32_t *x, int outer, int n, int inner, int exclusive, int reverse) {
    cumsum_uint32_t(out, x, outer, n, inner, exclusive, reverse);
}
void slmc_cumsum_i64(int64_t *out, const int64_t *x, int outer, int n, int inner, int exclusive, int reverse) {
    cumsum_int64_t(out, x, outer, n, inner, exclusive, reverse);
}
void slmc_cumsum_u64(uint64_t *out, const uint64_t *x, int outer, int n, int inner, int exclusive, int reverse) {
    cumsum_uint64_t(out, x, outer, n, inner, exclusive, reverse);
}
