#include "slmc_kernels.h"

#if defined(__GNUC__)
typedef uint32_t __attribute__((may_alias)) kv16_u32; /* int16 pairs read and written as words */
#endif

/* -q int8: the int16 cache is [seq_len][kv_dim]; n new rows land at row pos. Word-aligned rows are copied a
 * word at a time: a C library's memcpy may copy bytes (picolibc's on RV32: about 400 instructions a row of 32) */
void slmc_kv_write_i16(int16_t *cache, const int16_t *x, int pos, int n, int kv_dim) {
    int16_t *dst = cache + (size_t)pos * kv_dim;
    size_t count = (size_t)n * kv_dim;
#if defined(__GNUC__)
    if (((uintptr_t)dst | (uintptr_t)x | count) % 2 == 0 && ((uintptr_t)dst | (uintptr_t)x) % 4 == 0) {
        kv16_u32 *d = (kv16_u32 *)(void *)dst;
        const kv16_u32 *s = (const kv16_u32 *)(const void *)x;
        for (size_t i = 0; i < count / 2; i++) d[i] = s[i];
        return;
    }
#endif
    memcpy(dst, x, count * sizeof(int16_t));
}
