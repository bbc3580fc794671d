#include "slmc_kernels.h"

#define SLMC_MAX_RANK 8
int slmc_nd_next(int32_t *idx, const int32_t *shape, int dims, ptrdiff_t *off, const int32_t *str, int ld, int nops);

/* Integer arithmetic with C semantics where ONNX leaves it open: Div truncates toward zero, and
 * wrap-around on overflow (computed unsigned: signed overflow is undefined in C). Division by zero
 * gives 0 instead of a trap. op codes as in binary_f32.c (Pow and PRelu are float only). 8- and 16-bit
 * operands are computed in uint32_t, so a product cannot overflow int after promotion. */
#define SLMC_INT_RUN(T, U)                                                                            \
    static void run_##T(T *o, const T *a, int sa, const T *b, int sb, int n, int op) {               \
        int i;                                                                                        \
        for (i = 0; i < n; i++) {                                                                     \
            T x = a[i * sa], y = b[i * sb], r = 0;                                                    \
            switch (op) {                                                                             \
            case 0: r = (T)((U)x + (U)y); break;                                                      \
            case 1: r = (T)((U)x - (U)y); break;                                                      \
            case 2: r = (T)((U)x * (U)y); break;                                                      \
            case 3: r = y ? x / y : 0; break;                                                         \
            case 5: r = x > y ? x : y; break;                                                         \
            case 6: r = x < y ? x : y; break;                                                         \
            case 7: r = y ? x % y : 0; if (r != 0 && ((r < 0) != (y < 0))) r += y; break;            \
            case 8: r = y ? x % y : 0; break;                                                         \
            }                                                                                         \
            o[i] = r;                                                                                 \
        }                                                                                             \
    }
SLMC_INT_RUN(int32_t, uint32_t)
SLMC_INT_RUN(int64_t, uint64_t)
SLMC_INT_RUN(int8_t, uint32_t)
SLMC_INT_RUN(uint8_t, uint32_t)
SLMC_INT_RUN(int16_t, uint32_t)
SLMC_INT_RUN(uint16_t, uint32_t)
SLMC_INT_RUN(uint32_t, uint32_t)
SLMC_INT_RUN(uint64_t, uint64_t)

/* out (contiguous) = a op b with broadcasting; str: out's, a's and b's strides, rank each. */
void slmc_binary_i32(int32_t *out, const int32_t *a, const int32_t *b, int op, int rank, const int32_t *shape, const int32_t *str) {
    int32_t idx[SLMC_MAX_RANK] = {0};
    ptrdiff_t off[3] = {0, 0, 0};
    int r = rank - 1;
    do run_int32_t(out + off[0], a + off[1], str[rank + r], b + off[2], str[2 * rank + r], shape[r], op);
    while (slmc_nd_next(idx, shape, r, off, str, rank, 3));
}

void slmc_binary_i64(int64_t *out, const int64_t *a, const int64_t *b, int op, int rank, const int32_t *shape, const int32_t *str) {
    int32_t idx[SLMC_MAX_RANK] = {0};
    ptrdiff_t off[3] = {0, 0, 0};
    int r = rank - 1;
    do run_int64_t(out + off[0], a + off[1], str[rank + r], b + off[2], str[2 * rank + r], shape[r], op);
    while (slmc_nd_next(idx, shape, r, off, str, rank, 3));
}

void slmc_binary_i8(int8_t *out, const int8_t *a, const int8_t *b, int op, int rank, const int32_t *shape, const int32_t *str) {
    int32_t idx[SLMC_MAX_RANK] = {0};
    ptrdiff_t off[3] = {0, 0, 0};
    int r = rank - 1;
    do run_int8_t(out + off[0], a + off[1], str[rank + r], b + off[2], str[2 * rank + r], shape[r], op);
    while (slmc_nd_next(idx, shape, r, off, str, rank, 3));
}

void slmc_binary_u8(uint8_t *out, const uint8_t *a, const uint8_t *b, int op, int rank, const int32_t *shape, const int32_t *str) {
    int32_t idx[SLMC_MAX_RANK] = {0};
    ptrdiff_t off[3] = {0, 0, 0};
    int r = rank - 1;
    do run_uint8_t(out + off[0], a + off[1], str[rank + r], b + off[2], str[2 * rank + r], shape[r], op);
    while (slmc_nd_next(idx, shape, r, off, str, rank, 3));
}

void slmc_binary_i16(int16_t *out, const int16_t *a, const int16_t *b, int op, int rank, const int32_t *shape, const int32_t *str) {
    int32_t idx[SLMC_MAX_RANK] = {0};
    ptrdiff_t off[3] = {0, 0, 0};
    int r = rank - 1;
    do run_int16_t(out + off[0], a + off[1], str[rank + r], b + off[2], str[2 * rank + r], shape[r], op);
    while (slmc_nd_next(idx, shape, r, off, str, rank, 3));
}

void slmc_binary_u16(uint16_t *out, const uint16_t *a, const uint16_t *b, int op, int rank, const int32_t *shape, const int32_t *str) {
    int32_t idx[SLMC_MAX_RANK] = {0};
    ptrdiff_t off[3] = {0, 0, 0};
    int r = rank - 1;
    do run_uint16_t(out + off[0], a + off[1], str[rank + r], b + off[2], str[2 * rank + r], shape[r], op);
    while (slmc_nd_next(idx, shape, r, off, str, rank, 3));
}

void slmc_binary_u32(uint32_t *out, const uint32_t *a, const uint32_t *b, int op, int rank, const int32_t *shape, const int32_t *str) {
    int32_t idx[SLMC_MAX_RANK] = {0};
    ptrdiff_t off[3] = {0, 0, 0};
    int r = rank - 1;
    do run_uint32_t(out + off[0], a + off[1], str[rank + r], b + off[2], str[2 * rank + r], shape[r], op);
    while (slmc_nd_next(idx, shape, r, off, str, rank, 3));
}

void slmc_binary_u64(uint64_t *out, const uint64_t *a, const uint64_t *b, int op, int rank, const int32_t *shape, const int32_t *str) {
    int32_t idx[SLMC_MAX_RANK] = {0};
    ptrdiff_t off[3] = {0, 0, 0};
    int r = rank - 1;
    do run_uint64_t(out + off[0], a + off[1], str[rank + r], b + off[2], str[2 * rank + r], shape[r], op);
    while (slmc_nd_next(idx, shape, r, off, str, rank, 3));
}
