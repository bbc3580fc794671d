#include "slmc_kernels.h"

/* The KV cache stored as IEEE binary16 bit patterns (storage only: attention_f16kv.c converts back
 * to float). The conversion is integer code, not _Float16/__fp16, so that every target (one with a
 * half-precision FPU, one without any FPU) stores the same bits: round to nearest, ties to even;
 * subnormal halves where the value is below 2^-14; infinity from 65520 up (the first value that
 * rounds past 65504); NaN keeps the top 10 bits of its payload (0x7c01 if they are all zero), which
 * is what numpy's float32 -> float16 does, so its np.float16 is this kernel's twin. */
static inline uint16_t kv_f32_to_f16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000u, ax = x & 0x7fffffffu;
    if (ax >= 0x38800000u && ax < 0x477ff000u)   /* the result is a normal half: round at bit 13 */
        return (uint16_t)(sign | ((ax + 0x0fffu + ((ax >> 13) & 1u) - 0x38000000u) >> 13));
    if (ax >= 0x7f800000u) {                     /* inf, nan */
        uint32_t h = 0x7c00u + (ax > 0x7f800000u ? ((ax & 0x7fffffu) >> 13) : 0u);
        return (uint16_t)(sign | (h == 0x7c00u && ax > 0x7f800000u ? 0x7c01u : h));
    }
    if (ax >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u);   /* rounds past 65504: inf */
    if (ax <= 0x33000000u) return (uint16_t)sign;               /* at most 2^-25 (a tie, to even): zero */
    /* a subnormal half: the value in units of 2^-24 is m >> (126 - e), rounded to nearest even */
    uint32_t e = ax >> 23, m = (ax & 0x7fffffu) | 0x800000u, sh = 126u - e;   /* sh in 14..24 */
    uint32_t q = m >> sh, rem = m & ((1u << sh) - 1u), half = 1u << (sh - 1u);
    if (rem > half || (rem == half && (q & 1u))) q++;           /* q == 0x400 is the smallest normal: right */
    return (uint16_t)(sign | q);
}

/* The cache is [seq_len][kv_dim] (llama2.c's layout): n new rows land at row pos. */
void slmc_kv_write_f16(uint16_t *cache, const float *x, int pos, int n, int kv_dim) {
    uint16_t *dst = cache + (size_t)pos * kv_dim;
    for (size_t i = 0; i < (size_t)n * kv_dim; i++) dst[i] = kv_f32_to_f16(x[i]);
}
