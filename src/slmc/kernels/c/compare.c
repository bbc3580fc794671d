#include "slmc_kernels.h"

#define SLMC_MAX_RANK 8
int slmc_nd_next(int32_t *idx, const int32_t *shape, int dims, ptrdiff_t *off, const int32_t *str, int ld, int nops);

/* Comparisons and logic into bool (uint8_t 0/1), with broadcasting. op codes (kernels/onnx.py
 * COMPARE): 0 Equal 1 Less 2 Greater 3 LessOrEqual 4 GreaterOrEqual 5 And 6 Or 7 Xor. */
#define SLMC_CMP_RUN(T)                                                                               \
    static void cmp_##T(uint8_t *o, const T *a, int sa, const T *b, int sb, int n, int op) {         \
        int i;                                                                                        \
        switch (op) {                                                                                 \
        case 0: for (i = 0; i < n; i++) o[i] = a[i * sa] == b[i * sb]; break;                        \
        case 1: for (i = 0; i < n; i++) o[i] = a[i * sa] < b[i * sb]; break;                         \
        case 2: for (i = 0; i < n; i++) o[i] = a[i * sa] > b[i * sb]; break;                         \
        case 3: for (i = 0; i < n; i++) o[i] = a[i * sa] <= b[i * sb]; break;                        \
        case 4: for (i = 0; i < n; i++) o[i] = a[i * sa] >= b[i * sb]; break;                        \
        case 5: for (i = 0; i < n; i++) o[i] = (a[i * sa] != 0) & (b[i * sb] != 0); break;           \
        case 6: for (i = 0; i < n; i++) o[i] = (a[i * sa] != 0) | (b[i * sb] != 0); break;           \
        case 7: for (i = 0; i < n; i++) o[i] = (a[i * sa] != 0) ^ (b[i * sb] != 0); break;           \
        }                                                                                             \
    }
SLMC_CMP_RUN(float)
SLMC_CMP_RUN(int32_t)
SLMC_CMP_RUN(int64_t)
SLMC_CMP_RUN(uint8_t)
SLMC_CMP_RUN(int8_t)
SLMC_CMP_RUN(int16_t)
SLMC_CMP_RUN(uint16_t)
SLMC_CMP_RUN(uint32_t)
SLMC_CMP_RUN(uint64_t)

#define SLMC_CMP_WALK(fn)                                                                             \
    int32_t idx[SLMC_MAX_RANK] = {0};                                                                 \
    ptrdiff_t off[3] = {0, 0, 0};                                                                     \
    int r = rank - 1;                                                                                 \
    do fn(out + off[0], a + off[1], str[rank + r], b + off[2], str[2 * rank + r], shape[r], op);     \
    while (slmc_nd_next(idx, shape, r, off, str, rank, 3))

/* out (contiguous) = a op b; str: out's, a's and b's strides, rank each */
void slmc_compare_f32(uint8_t *out, const float *a, const float *b, int op, int rank, const int32_t *shape, const int32_t *str) {
    SLMC_CMP_WALK(cmp_float);
}

void slmc_compare_i32(uint8_t *out, const int32_t *a, const int32_t *b, int op, int rank, const int32_t *shape, const int32_t *str) {
    SLMC_CMP_WALK(cmp_int32_t);
}

void slmc_compare_i64(uint8_t *out, const int64_t *a, const int64_t *b, int op, int rank, const int32_t *shape, const int32_t *str) {
    SLMC_CMP_WALK(cmp_int64_t);
}

void slmc_compare_bool(uint8_t *out, const uint8_t *a, const uint8_t *b, int op, int rank, const int32_t *shape, const int32_t *str) {
    SLMC_CMP_WALK(cmp_uint8_t);
}

void slmc_compare_i8(uint8_t *out, const int8_t *a, const int8_t *b, int op, int rank, const int32_t *shape, const int32_t *str) {
    SLMC_CMP_WALK(cmp_int8_t);
}

void slmc_compare_u8(uint8_t *out, const uint8_t *a, const uint8_t *b, int op, int rank, const int32_t *shape, const int32_t *str) {
    SLMC_CMP_WALK(cmp_uint8_t);
}

void slmc_compare_i16(uint8_t *out, const int16_t *a, const int16_t *b, int op, int rank, const int32_t *shape, const int32_t *str) {
    SLMC_CMP_WALK(cmp_int16_t);
}

void slmc_compare_u16(uint8_t *out, const uint16_t *a, const uint16_t *b, int op, int rank, const int32_t *shape, const int32_t *str) {
    SLMC_CMP_WALK(cmp_uint16_t);
}

void slmc_compare_u32(uint8_t *out, const uint32_t *a, const uint32_t *b, int op, int rank, const int32_t *shape, const int32_t *str) {
    SLMC_CMP_WALK(cmp_uint32_t);
}

void slmc_compare_u64(uint8_t *out, const uint64_t *a, const uint64_t *b, int op, int rank, const int32_t *shape, const int32_t *str) {
    SLMC_CMP_WALK(cmp_uint64_t);
}

void slmc_not_bool(uint8_t *out, const uint8_t *x, int n) {
    for (int i = 0; i < n; i++) out[i] = !x[i];
}
