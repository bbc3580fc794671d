#include "slmc_kernels.h"
#if defined(__riscv) && defined(__GNUC__) && !defined(__clang__)
/* gcc's first scheduling pass hoists all 32 weight loads of a step and spills the sums; without it the
 * loop keeps 8 sums, 4 activations and the pointers in registers */
#pragma GCC optimize("no-schedule-insns")
#endif

/* c += a * m on the int64 c's 32-bit halves: gcc 12 widens both operands and multiplies 64 x 64 here (about
 * 12 instructions) and copies the low half for the carry; on RV32 this is mul, mulh, add, sltu, add, add */
static inline void mac64(uint32_t *lo, uint32_t *hi, int32_t a, int32_t m) {
#if defined(__riscv) && __riscv_xlen == 32
    uint32_t pl, ph, l = *lo, h = *hi;
    __asm__("mul %[pl], %[a], %[m]\n\tmulh %[ph], %[a], %[m]\n\tadd %[l], %[l], %[pl]\n\t"
            "sltu %[pl], %[l], %[pl]\n\tadd %[h], %[h], %[ph]\n\tadd %[h], %[h], %[pl]"
            : [l] "+r"(l), [h] "+r"(h), [pl] "=&r"(pl), [ph] "=&r"(ph) : [a] "r"(a), [m] "r"(m));
    *lo = l;
    *hi = h;
#else
    uint64_t c = (((uint64_t)*hi << 32) | *lo) + (uint64_t)((int64_t)a * m);
    *lo = (uint32_t)c;
    *hi = (uint32_t)(c >> 32);
#endif
}

/* slmc_i8_store on 32-bit halves: (acc + 2^(shift-1)) >> shift saturated, as gcc's generic 64-bit shift and
 * compares cost about twice this (shift is 1..62, the same for every row: its branch is always predicted) */
static inline void store(void *out, size_t at, uint32_t lo, uint32_t hi, int shift, int out_bits) {
    int32_t y;
    if (shift > 32) { /* the rounding bit lies in the high half; the result fits int32 */
        y = (int32_t)(hi + (1u << (shift - 33))) >> (shift - 32);
    } else if (shift == 32) {
        y = (int32_t)(hi + (lo >> 31)); /* 2^31 added to the low half carries when its top bit is set */
    } else {
        uint32_t rl = 1u << (shift - 1), l = lo + rl, h2 = hi + (l < rl);
        int32_t h = (int32_t)h2 >> shift;
        y = (int32_t)((l >> shift) | (h2 << 1 << (31 - shift)));
        if (h != (y >> 31)) y = h < 0 ? INT32_MIN : INT32_MAX;
    }
    if (out_bits == 16) ((int16_t *)out)[at] = (int16_t)(y < -32768 ? -32768 : y > 32767 ? 32767 : y);
    else ((int32_t *)out)[at] = y;
}

/* c = a * m, the first and only group of a row */
static inline void mul64(uint32_t *lo, uint32_t *hi, int32_t a, int32_t m) {
#if defined(__riscv) && __riscv_xlen == 32
    uint32_t ph;
    __asm__("mulh %0, %1, %2" : "=r"(ph) : "r"(a), "r"(m));
    *lo = (uint32_t)a * (uint32_t)m;
    *hi = ph;
#else
    uint64_t c = (uint64_t)((int64_t)a * m);
    *lo = (uint32_t)c;
    *hi = (uint32_t)(c >> 32);
#endif
}

static inline __attribute__((always_inline)) void pass(void *out, size_t at, const int16_t *xi, const int8_t *p0,
                                                      const int8_t *p1, const int32_t *m0, const int32_t *m1, int ng,
                                                      int group, int shift, int out_bits, const int R, const int G) {
    uint32_t cl[8] = {0, 0, 0, 0, 0, 0, 0, 0}, ch[8] = {0, 0, 0, 0, 0, 0, 0, 0}; /* int64 sums, in halves */
    const int16_t *xp = xi;
    for (const int32_t *me = m0 + 4 * ng; m0 < me; m0 += 4, m1 += 4) {
        int32_t a[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        const int16_t *xe = xp + (G > 0 ? G : group);
#pragma GCC unroll 4
        for (; xp < xe; xp += 4, p0 += 16, p1 += 16) {
            int32_t x0 = xp[0], x1 = xp[1], x2 = xp[2], x3 = xp[3];
#pragma GCC unroll 4
            for (int r = 0; r < 4; r++)
                a[r] += x0 * p0[4 * r] + x1 * p0[4 * r + 1] + x2 * p0[4 * r + 2] + x3 * p0[4 * r + 3];
            if (R == 8) {
#pragma GCC unroll 4
                for (int r = 0; r < 4; r++)
                    a[4 + r] += x0 * p1[4 * r] + x1 * p1[4 * r + 1] + x2 * p1[4 * r + 2] + x3 * p1[4 * r + 3];
            }
        }
        if (G < 0) { /* one group per row (G = -1): the sums need not live across the loop */
#pragma GCC unroll 4
            for (int r = 0; r < 4; r++) mul64(&cl[r], &ch[r], a[r], m0[r]);
            if (R == 8) {
#pragma GCC unroll 4
                for (int r = 0; r < 4; r++) mul64(&cl[4 + r], &ch[4 + r], a[4 + r], m1[r]);
            }
            break;
        }
#pragma GCC unroll 4
        for (int r = 0; r < 4; r++) mac64(&cl[r], &ch[r], a[r], m0[r]);
        if (R == 8) {
#pragma GCC unroll 4
            for (int r = 0; r < 4; r++) mac64(&cl[4 + r], &ch[4 + r], a[4 + r], m1[r]);
        }
    }
#pragma GCC unroll 8
    for (int r = 0; r < R; r++) store(out, at + r, cl[r], ch[r], shift, out_bits);
}

void slmc_linear_i8_rv32(void *out, const int16_t *x, const int8_t *q, const int32_t *m, int n, int rows, int cols,
                         int group, int shift, int out_bits) {
    int ng = cols / group, nb = rows / 4;
    size_t bq = (size_t)4 * cols, bm = (size_t)4 * ng; /* one block's weights and multipliers */
    for (int i = 0; i < n; i++) {
        const int16_t *xi = x + (size_t)i * cols;
        const int8_t *pw = q;
        const int32_t *pm = m;
        size_t at = (size_t)i * rows;
        int blk = 0;
        if (ng == 1)
            for (; blk + 2 <= nb; blk += 2, pw += 2 * bq, pm += 2 * bm, at += 8)
                pass(out, at, xi, pw, pw + bq, pm, pm + bm, ng, group, shift, out_bits, 8, -1);
        else if (group >= 16)
            for (; blk + 2 <= nb; blk += 2, pw += 2 * bq, pm += 2 * bm, at += 8)
                pass(out, at, xi, pw, pw + bq, pm, pm + bm, ng, group, shift, out_bits, 8, 0);
        for (; blk < nb; blk++, pw += bq, pm += bm, at += 4)
            if (group == 4) pass(out, at, xi, pw, pw, pm, pm, ng, group, shift, out_bits, 4, 4);
            else pass(out, at, xi, pw, pw, pm, pm, ng, group, shift, out_bits, 4, 0);
        for (int r = nb * 4; r < rows; r++, pw += cols, pm += ng)
            slmc_i8_store(out, (size_t)i * rows + r, slmc_i8_row(xi, pw, pm, cols, group), shift, out_bits);
    }
}
