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
    } else if (out_bits == 16 && shift >= 17) { /* int16 out: the result fits where (acc + rl) >> (shift + 15),
                                                    * the high half >> (shift - 17), is 0 or -1 */
        uint32_t rl = 1u << (shift - 1), l = lo + rl, h2 = hi + (l < rl);
        if ((uint32_t)(((int32_t)h2 >> (shift - 17)) + 1) > 1) y = (int32_t)h2 < 0 ? -32768 : 32767;
        else y = (int32_t)((l >> shift) | (h2 << (32 - shift)));
        ((int16_t *)out)[at] = (int16_t)y;
        return;
    } else {
        uint32_t rl = 1u << (shift - 1), l = lo + rl, h2 = hi + (l < rl);
        int32_t h = (int32_t)h2 >> shift;
        y = (int32_t)((l >> shift) | (h2 << (32 - shift)));
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

/* Group 4 (a k like 172 that no larger power of two divides) pays a 64-bit multiply-add per 4 MACs; here it is
 * 2 instructions cheaper, exactly. The multipliers are in [0, 2^24) (quant/int8.py MULT_BITS), so each product
 * P = a m (|a| <= 2^24) has P >> 24 = mulhsu(a, m << 8) (the high word of a times the unsigned m 2^8), and a row
 * keeps L = sum(P) mod 2^32 (mul) and H = sum(P >> 24) (|H| < ng 2^24 < 2^31 for ng < 128). Then
 * sum(P) = H 2^24 + R with R = sum(P mod 2^24) in [0, ng 2^24), below 2^32, and R = L - H 2^24 mod 2^32. */
static inline void mac24(uint32_t *l, int32_t *h, int32_t a, int32_t m) {
#if defined(__riscv) && __riscv_xlen == 32
    uint32_t pl, t;
    int32_t ph;
    __asm__("mul %[pl], %[a], %[m]\n\tslli %[t], %[m], 8\n\tmulhsu %[ph], %[a], %[t]"
            : [pl] "=&r"(pl), [ph] "=r"(ph), [t] "=&r"(t) : [a] "r"(a), [m] "r"(m));
    *l += pl;
    *h += ph;
#else
    int64_t p = (int64_t)a * m;
    *l += (uint32_t)p;
    *h += (int32_t)(p >> 24);
#endif
}

/* one group of 4 columns for 4 rows: the sums of 4 products, each times its row's multiplier into the sums */
static inline __attribute__((always_inline)) void group4(uint32_t *l, int32_t *h, const int16_t *xp, const int8_t *p,
                                                        const int32_t *m) {
    int32_t x0 = xp[0], x1 = xp[1], x2 = xp[2], x3 = xp[3];
#pragma GCC unroll 4
    for (int r = 0; r < 4; r++)
        mac24(&l[r], &h[r], x0 * p[4 * r] + x1 * p[4 * r + 1] + x2 * p[4 * r + 2] + x3 * p[4 * r + 3], m[r]);
}

/* group 4, ng < 128: 4 rows, two groups a step (2 instructions a group fewer of pointer updates and branch) */
static inline __attribute__((always_inline)) void pass_g4(void *out, size_t at, const int16_t *xp, const int8_t *p,
                                                         const int32_t *m, int ng, int shift, int out_bits) {
    uint32_t l[4] = {0, 0, 0, 0};
    int32_t h[4] = {0, 0, 0, 0};
    for (const int32_t *me = m + 4 * (ng & ~1); m < me; m += 8, p += 32, xp += 8) {
        group4(l, h, xp, p, m);
        group4(l, h, xp + 4, p + 16, m + 4);
    }
    if (ng & 1) group4(l, h, xp, p, m);
#pragma GCC unroll 4
    for (int r = 0; r < 4; r++) { /* sum = H 2^24 + R in 32-bit halves */
        uint32_t rr = l[r] - ((uint32_t)h[r] << 24), lo = ((uint32_t)h[r] << 24) + rr;
        store(out, at + r, lo, (uint32_t)(h[r] >> 8) + (lo < rr), shift, out_bits);
    }
}

/* every 4-row block of a group-4 product: a function of its own, where gcc keeps the 8 sums in registers */
static __attribute__((noinline)) void blocks_g4(void *out, size_t at, const int16_t *xi, const int8_t *pw,
                                                const int32_t *pm, int nblk, int ng, int shift, int out_bits) {
    for (int b = 0; b < nblk; b++, pw += (size_t)16 * ng, pm += (size_t)4 * ng, at += 4)
        pass_g4(out, at, xi, pw, pm, ng, shift, out_bits);
}

/* pairs of 4-row blocks (8 rows a pass): one group a row (G = -1), or groups of 16 and more */
static __attribute__((noinline)) void blocks8_one(void *out, size_t at, const int16_t *xi, const int8_t *pw,
                                                  const int32_t *pm, int n8, int ng, int group, int shift,
                                                  int out_bits) {
    size_t bq = (size_t)4 * group; /* cols = group */
    for (int b = 0; b < n8; b++, pw += 2 * bq, pm += 8, at += 8)
        pass(out, at, xi, pw, pw + bq, pm, pm + 4, 1, group, shift, out_bits, 8, -1);
}
static __attribute__((noinline)) void blocks8(void *out, size_t at, const int16_t *xi, const int8_t *pw,
                                              const int32_t *pm, int n8, int ng, int group, int shift, int out_bits) {
    size_t bq = (size_t)4 * group * ng, bm = (size_t)4 * ng;
    for (int b = 0; b < n8; b++, pw += 2 * bq, pm += 2 * bm, at += 8)
        pass(out, at, xi, pw, pw + bq, pm, pm + bm, ng, group, shift, out_bits, 8, 0);
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
        if (ng == 1 || group >= 16) {
            int n8 = nb / 2;
            (ng == 1 ? blocks8_one : blocks8)(out, at, xi, pw, pm, n8, ng, group, shift, out_bits);
            blk = 2 * n8, pw += (size_t)blk * bq, pm += (size_t)blk * bm, at += (size_t)4 * blk;
        }
        if (group == 4 && ng < 128) {
            blocks_g4(out, at, xi, pw, pm, nb - blk, ng, shift, out_bits);
            pw += (size_t)(nb - blk) * bq, pm += (size_t)(nb - blk) * bm, at += (size_t)4 * (nb - blk), blk = nb;
        }
        for (; blk < nb; blk++, pw += bq, pm += bm, at += 4)
            if (group == 4) pass(out, at, xi, pw, pw, pm, pm, ng, group, shift, out_bits, 4, 4);
            else pass(out, at, xi, pw, pw, pm, pm, ng, group, shift, out_bits, 4, 0);
        for (int r = nb * 4; r < rows; r++, pw += cols, pm += ng)
            slmc_i8_store(out, (size_t)i * rows + r, slmc_i8_row(xi, pw, pm, cols, group), shift, out_bits);
    }
}
