#include "slmc_kernels.h"

/* ONNX TopK along one axis of x viewed as [outer, n, inner]: the k largest (or smallest) values of each
 * line and their indices (int64), best first; of equal values the lower index comes first. Insertion
 * into the k outputs, one pass over the line: O(n k), no scratch. The outputs must not overlap x. */
#define SLMC_TOPK(T)                                                                                  \
    static void topk_##T(T *vals, int64_t *ids, const T *x, int outer, int n, int inner, int k, int largest) { \
        for (int o = 0; o < outer; o++)                                                               \
            for (int i = 0; i < inner; i++) {                                                         \
                const T *xl = x + (size_t)o * n * inner + i;                                          \
                T *vl = vals + (size_t)o * k * inner + i;                                             \
                int64_t *il = ids + (size_t)o * k * inner + i;                                        \
                int m = 0;                                                                            \
                for (int j = 0; j < n; j++) {                                                         \
                    T e = xl[(size_t)j * inner];                                                      \
                    int p = m;                                                                        \
                    while (p > 0 && (largest ? e > vl[(size_t)(p - 1) * inner] : e < vl[(size_t)(p - 1) * inner])) p--; \
                    if (p >= k) continue;                                                             \
                    for (int q = m < k ? m : k - 1; q > p; q--) {                                     \
                        vl[(size_t)q * inner] = vl[(size_t)(q - 1) * inner];                          \
                        il[(size_t)q * inner] = il[(size_t)(q - 1) * inner];                          \
                    }                                                                                 \
                    vl[(size_t)p * inner] = e;                                                        \
                    il[(size_t)p * inner] = j;                                                        \
                    if (m < k) m++;                                                                   \
                }                                                                                     \
            }                                                                                         \
    }
SLMC_TOPK(float)
SLMC_TOPK(double)
SLMC_TOPK(int8_t)
SLMC_TOPK(uint8_t)
SLMC_TOPK(int16_t)
SLMC_TOPK(uint16_t)
SLMC_TOPK(int32_t)
SLMC_TOPK(uint32_t)
SLMC_TOPK(int64_t)
SLMC_TOPK(uint64_t)

void slmc_topk_f32(float *vals, int64_t *ids, const float *x, int outer, int n, int inner, int k, int largest) {
    topk_float(vals, ids, x, outer, n, inner, k, largest);
}
void slmc_topk_f64(double *vals, int64_t *ids, const double *x, int outer, int n, int inner, int k, int largest) {
    topk_double(vals, ids, x, outer, n, inner, k, largest);
}
void slmc_topk_i8(int8_t *vals, int64_t *ids, const int8_t *x, int outer, int n, int inner, int k, int largest) {
    topk_int8_t(vals, ids, x, outer, n, inner, k, largest);
}
void slmc_topk_u8(uint8_t *vals, int64_t *ids, const uint8_t *x, int outer, int n, int inner, int k, int largest) {
    topk_uint8_t(vals, ids, x, outer, n, inner, k, largest);
}
void slmc_topk_i16(int16_t *vals, int64_t *ids, const int16_t *x, int outer, int n, int inner, int k, int largest) {
    topk_int16_t(vals, ids, x, outer, n, inner, k, largest);
}
void slmc_topk_u16(uint16_t *vals, int64_t *ids, const uint16_t *x, int outer, int n, int inner, int k, int largest) {
    topk_uint16_t(vals, ids, x, outer, n, inner, k, largest);
}
void slmc_topk_i32(int32_t *vals, int64_t *ids, const int32_t *x, int outer, int n, int inner, int k, int largest) {
    topk_int32_t(vals, ids, x, outer, n, inner, k, largest);
}
void slmc_topk_u32(uint32_t *vals, int64_t *ids, const uint32_t *x, int outer, int n, int inner, int k, int largest) {
    topk_uint32_t(vals, ids, x, outer, n, inner, k, largest);
}
void slmc_topk_i64(int64_t *vals, int64_t *ids, const int64_t *x, int outer, int n, int inner, int k, int largest) {
    topk_int64_t(vals, ids, x, outer, n, inner, k, largest);
}
void slmc_topk_u64(uint64_t *vals, int64_t *ids, const uint64_t *x, int outer, int n, int inner, int k, int largest) {
    topk_uint64_t(vals, ids, x, outer, n, inner, k, largest);
}
