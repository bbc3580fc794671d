#include "slmc_kernels.h"

/* -q int8 SwiGLU: g and u int32 with f_in fractional bits; sigmoid(g) in Q15 from a table over
 * [-range, range) in steps of 2^-step_log2 with linear interpolation; silu = (g * sig) >> 15 (rounded);
 * out int16 = (silu * u) >> (2 f_in - f_out) (rounded). */

/* a * b as int64 (one mul and one mulh on RV32, where gcc 12 may multiply 64 x 64 instead) */
static inline int64_t wide_mul(int32_t a, int32_t b) {
#if defined(__riscv) && __riscv_xlen == 32
    int32_t hi;
    __asm__("mulh %0, %1, %2" : "=r"(hi) : "r"(a), "r"(b));
    return (int64_t)(((uint64_t)(uint32_t)hi << 32) | (uint32_t)((uint32_t)a * (uint32_t)b));
#else
    return (int64_t)a * b;
#endif
}

void slmc_swiglu_i(int16_t *out, const int32_t *g, const int32_t *u, const int32_t *lut, int count, int f_in,
                   int f_out, int step_log2, int range) {
    int64_t lo = -((int64_t)range << f_in), hi = ((int64_t)range << f_in) - 1;
    int s = 2 * f_in - f_out;
    /* the same arithmetic in int32 where it fits: the table position (t - lo) << step_log2 < 2 range 2^(f_in +
     * step_log2) and its fraction << 8 below 2^31; silu (|silu| <= |g| + 1) then needs int64 only for products */
    if (f_in + step_log2 + 9 + (range > 8 ? 4 : 0) <= 30 && range <= 128 && s >= 1 && s <= 16 && f_in >= 8) {
        /* the same values in fewer steps: the table fraction is (p >> (f_in - 8)) & 255; silu from g = gh 2^15 + gl
         * (gl in [0, 2^15)) is gh sg + ((gl sg + 2^14) >> 15), each term in int32 (|gh sg| <= 2^31, sg <= 2^15);
         * out = round(silu u / 2^s) is (P >> s) + bit s - 1 of P where P = silu u fits int32, and saturates
         * where it does not (|P| >= 2^31 gives |out| >= 2^(31 - s) >= 2^15 for s <= 16) */
        int32_t lo32 = (int32_t)lo, hi32 = (int32_t)hi;
        int fs = f_in - 8;
        for (int i = 0; i < count; i++) {
            int32_t gi = g[i], t = gi < lo32 ? lo32 : gi > hi32 ? hi32 : gi;
            uint32_t p = (uint32_t)(t - lo32) << step_log2;
            int32_t sg = slmc_lut_interp(lut, (int32_t)(p >> f_in), (int32_t)((p >> fs) & 0xFF));
            int32_t silu = (int32_t)((uint32_t)((gi >> 15) * sg) + ((uint32_t)((gi & 0x7FFF) * sg + (1 << 14)) >> 15));
            int64_t pr = wide_mul(silu, u[i]);
            int32_t pl = (int32_t)pr, ph = (int32_t)(pr >> 32), y;
            if (ph != (pl >> 31)) y = ph < 0 ? -32768 : 32767;
            else {
                y = (pl >> s) + ((pl >> (s - 1)) & 1);
                y = y < -32768 ? -32768 : y > 32767 ? 32767 : y;
            }
            out[i] = (int16_t)y;
        }
        return;
    }
    if (f_in + step_log2 + 9 + (range > 8 ? 4 : 0) <= 30 && range <= 128 && s >= 1 && s < 63) {
        int32_t lo32 = (int32_t)lo, hi32 = (int32_t)hi, mask = ((int32_t)1 << f_in) - 1;
        int64_t half = (int64_t)1 << (s - 1);
        for (int i = 0; i < count; i++) {
            int32_t gi = g[i], t = gi < lo32 ? lo32 : gi > hi32 ? hi32 : gi;
            int32_t p = (t - lo32) << step_log2;
            int32_t sg = slmc_lut_interp(lut, p >> f_in, ((p & mask) << 8) >> f_in);
            int32_t silu = (int32_t)((wide_mul(gi, sg) + (1 << 14)) >> 15);
            out[i] = slmc_sat16((wide_mul(silu, u[i]) + half) >> s);
        }
        return;
    }
    for (int i = 0; i < count; i++) {
        int64_t t = g[i] < lo ? lo : g[i] > hi ? hi : g[i];
        int64_t p = (t - lo) << step_log2;
        int32_t idx = (int32_t)(p >> f_in), fr = (int32_t)(((p & (((int64_t)1 << f_in) - 1)) << 8) >> f_in);
        int64_t sg = slmc_lut_interp(lut, idx, fr);
        int64_t silu = slmc_rshift_round((int64_t)g[i] * sg, 15);
        out[i] = slmc_sat16(slmc_rshift_round(silu * u[i], 2 * f_in - f_out));
    }
}
