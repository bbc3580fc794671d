#include "slmc_kernels.h"

/* Element-type conversion between every IR type. Type codes (kernels/onnx.py CAST_CODES):
 * 0 f32 1 f64 2 i8 3 u8 4 i16 5 u16 6 i32 7 u32 8 i64 9 u64 10 bool.
 * Integers convert straight to the target (no detour through double, which would round twice);
 * float to integer truncates toward zero, as C and numpy do; anything to bool is "!= 0". */
static int is_float(int t) { return t <= 1; }
static int is_unsigned(int t) { return t == 3 || t == 5 || t == 7 || t == 9 || t == 10; }

static double get_f(const void *x, int t, int i) {
    return t == 0 ? (double)((const float *)x)[i] : ((const double *)x)[i];
}

static int64_t get_i(const void *x, int t, int i) {
    switch (t) {
    case 2: return ((const int8_t *)x)[i];
    case 4: return ((const int16_t *)x)[i];
    case 6: return ((const int32_t *)x)[i];
    default: return ((const int64_t *)x)[i];
    }
}

static uint64_t get_u(const void *x, int t, int i) {
    switch (t) {
    case 3: case 10: return ((const uint8_t *)x)[i];
    case 5: return ((const uint16_t *)x)[i];
    case 7: return ((const uint32_t *)x)[i];
    default: return ((const uint64_t *)x)[i];
    }
}

#define SLMC_PUT(T)                                                                                   \
    do {                                                                                              \
        T *o = (T *)out;                                                                              \
        for (i = 0; i < n; i++)                                                                       \
            o[i] = is_float(from) ? (T)get_f(x, from, i) : is_unsigned(from) ? (T)get_u(x, from, i)   \
                                                         : (T)get_i(x, from, i);                      \
    } while (0)

void slmc_cast(void *out, int to, const void *x, int from, int n) {
    int i;
    switch (to) {
    case 0: SLMC_PUT(float); break;
    case 1: SLMC_PUT(double); break;
    case 2: SLMC_PUT(int8_t); break;
    case 3: SLMC_PUT(uint8_t); break;
    case 4: SLMC_PUT(int16_t); break;
    case 5: SLMC_PUT(uint16_t); break;
    case 6: SLMC_PUT(int32_t); break;
    case 7: SLMC_PUT(uint32_t); break;
    case 8: SLMC_PUT(int64_t); break;
    case 9: SLMC_PUT(uint64_t); break;
    case 10: {
        uint8_t *o = (uint8_t *)out;
        for (i = 0; i < n; i++)
            o[i] = is_float(from) ? get_f(x, from, i) != 0.0 : is_unsigned(from) ? get_u(x, from, i) != 0
                                                                : get_i(x, from, i) != 0;
    } break;
    }
}
