#include "slmc_kernels.h"

/* linear_q8.c for RV32IM cores with a one-cycle multiplier (Hazard3), bit-identical to it: the same
 * exact int32 dot product per group, rescaled by the weight's and the activation's scales and
 * accumulated in float in group order. The activations are widened to int16 once per call (into
 * scratch, 2*n*k bytes) and eight output rows share every activation that is loaded, so a MAC costs
 * a sign-extending byte load of the weight, a MUL and an ADD (plus an LH per 8), written out for a
 * whole group with literal offsets. Plain RV32IM: needs no Zb* (and so runs under Unicorn too).
 * Without an FPU the float rescale per group and row cost about 180 instructions through the
 * soft-float library; q8_scale_fast/q8_fadd below do it exactly in integer arithmetic (about 60 on
 * the common path), handing anything unusual to the library. */

#if defined(__GNUC__)
#define SLMC_ALWAYS_INLINE static inline __attribute__((always_inline))
#else
#define SLMC_ALWAYS_INLINE static inline
#endif

/* The rescale, val += ((float)ival * ws) * xs, in integer arithmetic: exact IEEE binary32
 * round-to-nearest-even fast paths for normal operands and results (what the soft-float library
 * computes, in a quarter of the instructions); zeros, subnormals, infinities, NaNs, overflow and
 * large cancellations go to the C float operators, so every result is the library's. */
static inline uint32_t q8_f2u(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static inline float q8_u2f(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

/* Bit length of a byte (0 for 0): normalising an int32 takes two compares and one table load (RV32IM has no CLZ) */
static const uint8_t q8_bitlen8[256] = {
    0, 1, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 4, 4, 4, 4, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5,
#define Q8_R6 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6
#define Q8_R7 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7
#define Q8_R8 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8
    Q8_R6, Q8_R6, Q8_R7, Q8_R7, Q8_R7, Q8_R7, Q8_R8, Q8_R8, Q8_R8, Q8_R8, Q8_R8, Q8_R8, Q8_R8, Q8_R8};
#undef Q8_R6
#undef Q8_R7
#undef Q8_R8

static inline uint32_t q8_mulhu(uint32_t a, uint32_t b) { return (uint32_t)(((uint64_t)a * b) >> 32); }

/* The top 32 bits of a 64-bit product hi:lo whose top bit is at 62 or 63, rounded to a 24-bit mantissa
 * m (2^23 <= m < 2^24) to nearest even; *e gets 1 more when the product reached 2^63 or rounding carried. */
SLMC_ALWAYS_INLINE uint32_t q8_round24(uint32_t hi, uint32_t lo, int32_t *e) {
    if (hi >> 31) *e += 1;
    else hi = (hi << 1) | (lo >> 31), lo <<= 1;
    hi |= lo != 0;                                     /* the bits below hi only decide ties: a sticky bit */
    uint32_t m = hi >> 8, r = hi & 0xffu;
    if (r > 0x80u || (r == 0x80u && (m & 1u))) {
        m += 1;
        if (m >> 24) m >>= 1, *e += 1;
    }
    return m;
}

/* ((float)a * ws) * xs with both roundings of IEEE binary32 (to nearest even), for a != 0, |a| < 2^24 and
 * positive normal scales whose products stay normal: what the soft-float library returns, in about a third
 * of its instructions. mx is xs's mantissa with its leading one at bit 31 and bx its biased exponent (one
 * unpacking per group, shared by every row). Returns 0 where the C float operators must do it. */
SLMC_ALWAYS_INLINE int q8_scale_fast(int32_t a, float ws, uint32_t mx, int32_t bx, uint32_t *bits) {
    uint32_t uw = q8_f2u(ws), bw = uw >> 23;           /* a negative ws makes bw >= 256 */
    uint32_t s = (uint32_t)a & 0x80000000u, m = s ? -(uint32_t)a : (uint32_t)a;
    /* ws < 2^103 keeps (float)a * ws below 2^127: finite, and at least ws, so normal (bx: see the caller) */
    if (m - 1u >= 0xffffffu || bw - 1u >= 229u) return 0;
    uint32_t n = m >> 16 ? (m >> 24 ? 24 + q8_bitlen8[m >> 24] : 16 + q8_bitlen8[m >> 16])
                         : (m >> 8 ? 8 + q8_bitlen8[m >> 8] : q8_bitlen8[m]);
    uint32_t l = m << (32 - n), mw = (uw << 8) | 0x80000000u;
    /* a = l * 2^(n-32), ws = mw * 2^(bw-158): the product's biased exponent is n + bw - 1 (+1 from round24) */
    int32_t e = (int32_t)(n + bw) - 1;
    uint32_t m1 = q8_round24(q8_mulhu(l, mw), l * mw, &e);
    l = m1 << 8;
    e += bx - 127;
    uint32_t m2 = q8_round24(q8_mulhu(l, mx), l * mx, &e);
    if ((uint32_t)e - 1u >= 254u) return 0;
    *bits = s | (((uint32_t)e - 1u) << 23) + m2;       /* m2's bit 23 adds the exponent's last 1 */
    return 1;
}

SLMC_ALWAYS_INLINE float q8_fadd(float x, float y) {
    uint32_t ux = q8_f2u(x), uy = q8_f2u(y);
    if ((ux & 0x7fffffffu) < (uy & 0x7fffffffu)) { uint32_t t = ux; ux = uy; uy = t; }  /* |x| >= |y| */
    if (!(uy & 0x7fffffffu) && (ux & 0x7fffffffu)) return q8_u2f(ux);   /* x + 0 with x != 0: x */
    uint32_t ex = (ux >> 23) & 0xff, ey = (uy >> 23) & 0xff;
    if (ex - 1u >= 253u || ey - 1u >= 254u) return x + y;       /* zero, subnormal, inf, nan, near overflow */
    uint32_t d = ex - ey;
    if (d > 25) return q8_u2f(ux);     /* |y| < half an ulp of x (and x's mantissa is exact): x */
    /* 3 guard bits: mantissas at bits 26..3, y's shifted-out bits folded into a sticky bit */
    uint32_t mx = ((ux & 0x7fffffu) | 0x800000u) << 3, my = ((uy & 0x7fffffu) | 0x800000u) << 3;
    uint32_t sy = d ? my >> d : my;
    if (d && (sy << d) != my) sy |= 1;
    uint32_t m, e = ex;
    if ((ux ^ uy) & 0x80000000u) {
        m = mx - sy;
        if (!(m >> 26)) {                      /* lost the top bit */
            if (d > 1 || !m) return x + y;     /* d <= 1 keeps it exact-able below; bigger cancellations: fallback */
            /* d == 1 or 0: sy has at most one sticky-free shifted bit, so m is exact: normalise */
            while (!(m >> 26)) { m <<= 1; e -= 1; }
            if ((int32_t)e < 1) return x + y;
        }
    } else {
        m = mx + sy;
        if (m >> 27) { m = (m >> 1) | (m & 1); e += 1; }
    }
    uint32_t r = m & 7; m >>= 3;
    if (r > 4 || (r == 4 && (m & 1))) {
        m += 1;
        if (m >> 24) { m >>= 1; e += 1; }
    }
    if (e > 254) return x + y;
    return q8_u2f((ux & 0x80000000u) | (e << 23) | (m & 0x7fffffu));
}

/* val + ((float)ival * ws) * xs, as linear_q8.c writes it. The first group's val is 0.0f, and 0.0f + p is p
 * for every p but -0 (the fast path never returns a zero). The rest goes through the library. */
#if defined(__GNUC__)
__attribute__((noinline))
#endif
static float q8_rescale_slow(float val, int32_t ival, float ws, float xs) {
    return q8_fadd(val, ((float)ival * ws) * xs);
}

/* v + 0.0f: v, but -0 becomes +0 */
static inline float q8_plus_zero(float v) { return q8_f2u(v) & 0x7fffffffu ? v : 0.0f; }

/* v[r] += ((float)a[r] * ws[r][g]) * xs for `rows` rows (sg: the first row's scale of group g, row stride
 * ng). A function of its own, called once per group of a block: one copy of the rescale, and the block's
 * multiply-accumulate loop keeps its pointers in registers. */
#if defined(__GNUC__)
__attribute__((noinline))
#endif
static void q8_rescale_rows(float *v, const int32_t *a, const float *sg, int ng, float xs, int rows, int first) {
    uint32_t ux = q8_f2u(xs), mx = (ux << 8) | 0x80000000u;
    int32_t bx = (int32_t)(ux >> 23);
    if ((uint32_t)bx - 1u >= 254u) {   /* xs zero (a zero group), subnormal, infinite, nan or negative */
        for (int r = 0; r < rows; r++, sg += ng) v[r] = q8_rescale_slow(first ? 0.0f : v[r], a[r], *sg, xs);
        return;
    }
    for (int r = 0; r < rows; r++, sg += ng) {
        uint32_t p;
        if (q8_scale_fast(a[r], *sg, mx, bx, &p)) v[r] = first ? q8_u2f(p) : q8_fadd(v[r], q8_u2f(p));
        else if (!a[r] && q8_f2u(*sg) < 0x7f800000u) v[r] = first ? 0.0f : q8_plus_zero(v[r]);  /* + (+0) */
        else v[r] = q8_rescale_slow(first ? 0.0f : v[r], a[r], *sg, xs);
    }
}

#ifndef SLMC_Q8_RESCALE_ONLY /* tests/kernels/test_q8_rescale.py builds the rescale alone on the host */
/* a0..a7 += 8 rows x 64, 32, 16 or 4 columns, written out with literal offsets: per column one LH of the
 * widened activation, then per row LB, MUL, ADD (3 instructions a MAC, and an LH per 8). In asm so
 * that gcc neither hoists the loads into registers and spills them nor adds address arithmetic. */
#define Q8_RV_ROW(P, A, O) "lb %[t], " O "(%[" #P "])\n\tmul %[t], %[t], %[x]\n\tadd %[" #A "], %[" #A "], %[t]\n\t"
#define Q8_RV_COL(O) "lh %[x], (" O ")*2(%[xp])\n\t" Q8_RV_ROW(p0, a0, O) Q8_RV_ROW(p1, a1, O) Q8_RV_ROW(p2, a2, O) \
    Q8_RV_ROW(p3, a3, O) Q8_RV_ROW(p4, a4, O) Q8_RV_ROW(p5, a5, O) Q8_RV_ROW(p6, a6, O) Q8_RV_ROW(p7, a7, O)
#define Q8_RV_COLS4(B) Q8_RV_COL(B "+0") Q8_RV_COL(B "+1") Q8_RV_COL(B "+2") Q8_RV_COL(B "+3")
#define Q8_RV_COLS16(B) Q8_RV_COLS4(B "+0") Q8_RV_COLS4(B "+4") Q8_RV_COLS4(B "+8") Q8_RV_COLS4(B "+12")
#define Q8_RV_OPS : [x] "=&r"(x), [t] "=&r"(t), [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), \
                    [a4] "+r"(a4), [a5] "+r"(a5), [a6] "+r"(a6), [a7] "+r"(a7)                                   \
                  : [xp] "r"(xp), [p0] "r"(p0), [p1] "r"(p1), [p2] "r"(p2), [p3] "r"(p3), [p4] "r"(p4),          \
                    [p5] "r"(p5), [p6] "r"(p6), [p7] "r"(p7) : "memory"
#define Q8_RV_STEP(N) xp += N, p0 += N, p1 += N, p2 += N, p3 += N, p4 += N, p5 += N, p6 += N, p7 += N

/* Eight output rows for one token (weights from p0, row stride k; their scales from s0, stride ng) */
SLMC_ALWAYS_INLINE void q8_rv32_rows8(float *o, const int16_t *xr, const float *xsr, const int8_t *p0,
                                      const float *s0, const float *b, int k, int ng, const int group) {
    const int8_t *p1 = p0 + k, *p2 = p1 + k, *p3 = p2 + k, *p4 = p3 + k, *p5 = p4 + k, *p6 = p5 + k, *p7 = p6 + k;
    float v[8];
    int32_t acc[8];
    const int16_t *xp = xr;
    for (int g = 0; g < ng; g++) {
        int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0, a4 = 0, a5 = 0, a6 = 0, a7 = 0, x, t;
        switch (group) {
        case 64: __asm__(Q8_RV_COLS16("0") Q8_RV_COLS16("16") Q8_RV_COLS16("32") Q8_RV_COLS16("48") Q8_RV_OPS); break;
        case 32: __asm__(Q8_RV_COLS16("0") Q8_RV_COLS16("16") Q8_RV_OPS); break;
        case 16: __asm__(Q8_RV_COLS16("0") Q8_RV_OPS); break;
        case 4: __asm__(Q8_RV_COLS4("0") Q8_RV_OPS); break;
        default: /* a group known only at run time, a multiple of 4 */
            for (int j = 0; j + 4 < group; j += 4) {
                __asm__(Q8_RV_COLS4("0") Q8_RV_OPS);
                Q8_RV_STEP(4);
            }
            __asm__(Q8_RV_COLS4("0") Q8_RV_OPS);
            Q8_RV_STEP(4 - group);  /* back to the group's start: one step for all below */
        }
        Q8_RV_STEP(group);
        acc[0] = a0, acc[1] = a1, acc[2] = a2, acc[3] = a3, acc[4] = a4, acc[5] = a5, acc[6] = a6, acc[7] = a7;
        q8_rescale_rows(v, acc, s0 + g, ng, xsr[g], 8, g == 0);
    }
    if (b)
        for (int r = 0; r < 8; r++) o[r] = q8_fadd(v[r], b[r]);
    else
        for (int r = 0; r < 8; r++) o[r] = q8_plus_zero(v[r]);
}

SLMC_ALWAYS_INLINE void q8_rv32_body(float *out, const int16_t *xw, const float *xs, const int8_t *wq,
                                     const float *ws, const float *b, int n, int k, int m, const int group) {
    const int ng = k / group;
    for (int s = 0; s < n; s++) {
        const int16_t *xr = xw + (size_t)s * k;
        const float *xsr = xs + (size_t)s * ng;
        float *o = out + (size_t)s * m;
        int i = 0;
        for (; group % 4 == 0 && i + 8 <= m; i += 8)
            q8_rv32_rows8(o + i, xr, xsr, wq + (size_t)i * k, ws + (size_t)i * ng, b ? b + i : 0, k, ng, group);
        for (; i < m; i++) {  /* the rows after the last block of 8, one at a time */
            const int8_t *p0 = wq + (size_t)i * k;
            float v0 = 0.0f;
            for (int g = 0; g < ng; g++) {
                int32_t a0 = 0;
                for (int j = g * group; j < (g + 1) * group; j++) a0 += (int32_t)xr[j] * p0[j];
                q8_rescale_rows(&v0, &a0, ws + (size_t)i * ng + g, ng, xsr[g], 1, g == 0);
            }
            o[i] = b ? q8_fadd(v0, b[i]) : q8_plus_zero(v0);
        }
    }
}

void slmc_linear_q8_rv32(float *out, const int8_t *xq, const float *xs, const int8_t *wq, const float *ws,
                         const float *b, int16_t *xw, int n, int k, int m, int group) {
    for (size_t t = 0; t < (size_t)n * k; t++) xw[t] = xq[t];
    switch (group) {
    case 64: q8_rv32_body(out, xw, xs, wq, ws, b, n, k, m, 64); break;
    case 32: q8_rv32_body(out, xw, xs, wq, ws, b, n, k, m, 32); break;
    case 16: q8_rv32_body(out, xw, xs, wq, ws, b, n, k, m, 16); break;
    case 4: q8_rv32_body(out, xw, xs, wq, ws, b, n, k, m, 4); break;
    default: q8_rv32_body(out, xw, xs, wq, ws, b, n, k, m, group); break;
    }
}
#endif
