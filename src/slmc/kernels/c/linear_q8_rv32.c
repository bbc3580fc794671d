#include "slmc_kernels.h"

/* linear_q8.c for RV32IM cores with a one-cycle multiplier (Hazard3), bit-identical to it: the same
 * exact int32 dot product per group, rescaled by the weight's and the activation's scales and
 * accumulated in float in group order. The activations are widened to int16 once per call (into
 * scratch, 2*n*k bytes) and four output rows share every activation that is loaded, so a MAC costs
 * a sign-extending byte load of the weight, a MUL and an ADD. Plain RV32IM: needs no Zb* (and so
 * runs under Unicorn too). Without an FPU the float rescale per group cost more than 64 MACs through
 * the soft-float library; q8_fmul/q8_fadd below do it exactly, in integer arithmetic. */

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

/* (float)a for |a| < 2^24: exact, so no rounding; normalised by a binary search for the top bit */
SLMC_ALWAYS_INLINE float q8_i2f(int32_t a) {
    if (a == 0) return 0.0f;
    uint32_t s = 0, m = (uint32_t)a;
    if (a < 0) s = 0x80000000u, m = -m;
    if (m >> 24) return (float)a;
    int e = 23;  /* exponent of the top bit once shifted up to bit 23 */
    if (!(m >> 8)) m <<= 16, e -= 16;     /* here m < 2^24 */
    if (!(m >> 16)) m <<= 8, e -= 8;
    if (!(m >> 20)) m <<= 4, e -= 4;
    if (!(m >> 22)) m <<= 2, e -= 2;
    if (!(m >> 23)) m <<= 1, e -= 1;
    return q8_u2f(s | ((uint32_t)(e + 127) << 23) | (m & 0x7fffffu));
}

SLMC_ALWAYS_INLINE float q8_fmul(float x, float y) {
    uint32_t ux = q8_f2u(x), uy = q8_f2u(y);
    uint32_t ex = (ux >> 23) & 0xff, ey = (uy >> 23) & 0xff;
    if (ex - 1u >= 254u || ey - 1u >= 254u) {
        if (!(ux & 0x7fffffffu) && ey - 1u < 254u) return q8_u2f((ux ^ uy) & 0x80000000u);  /* 0 * normal */
        if (!(uy & 0x7fffffffu) && ex - 1u < 254u) return q8_u2f((ux ^ uy) & 0x80000000u);
        return x * y;                                               /* subnormal, inf, nan */
    }
    uint32_t mx = (ux & 0x7fffffu) | 0x800000u, my = (uy & 0x7fffffu) | 0x800000u;
    uint64_t p = (uint64_t)mx * my;                              /* in [2^46, 2^48) */
    uint32_t hi = (uint32_t)(p >> 32), lo = (uint32_t)p;
    int32_t e = (int32_t)(ex + ey) - 127;
    uint32_t m, rem, half;
    if (hi >> 15) m = (hi << 8) | (lo >> 24), rem = lo & 0xffffffu, half = 0x800000u, e += 1;
    else m = (hi << 9) | (lo >> 23), rem = lo & 0x7fffffu, half = 0x400000u;
    if (rem > half || (rem == half && (m & 1))) {
        m += 1;
        if (m >> 24) m >>= 1, e += 1;
    }
    if (e < 1 || e > 254) return x * y;                          /* result not normal */
    return q8_u2f(((ux ^ uy) & 0x80000000u) | ((uint32_t)e << 23) | (m & 0x7fffffu));
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

/* val + ((float)ival * ws) * xs, as linear_q8.c writes it; one call, its parts inlined */
#if defined(__GNUC__)
__attribute__((noinline))
#endif
static float q8_rescale_add(float val, int32_t ival, float ws, float xs) {
    return q8_fadd(val, q8_fmul(q8_fmul(q8_i2f(ival), ws), xs));
}

SLMC_ALWAYS_INLINE void q8_rv32_body(float *out, const int16_t *xw, const float *xs, const int8_t *wq,
                                     const float *ws, const float *b, int n, int k, int m, const int group) {
    const int ng = k / group;
    for (int s = 0; s < n; s++) {
        const int16_t *xr = xw + (size_t)s * k;
        const float *xsr = xs + (size_t)s * ng;
        float *o = out + (size_t)s * m;
        int i = 0;
        for (; group % 4 == 0 && i + 4 <= m; i += 4) {
            const int8_t *p0 = wq + (size_t)i * k, *p1 = p0 + k, *p2 = p1 + k, *p3 = p2 + k;
            const float *s0 = ws + (size_t)i * ng;
            float v0 = 0.0f, v1 = 0.0f, v2 = 0.0f, v3 = 0.0f;
            const int16_t *xp = xr;
            for (int g = 0; g < ng; g++) {
                int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
                for (int j = 0; j < group; j += 4) {
                    /* 4 activations x 4 rows: 4 LH + 16 x (LB, MUL, ADD), in asm so that gcc does not hoist
                     * every load of the unrolled loop into registers and spill them */
                    int32_t x, t;
#define Q8_RV_ROW(P, A, O) "lb %[t], " #O "(%[" #P "])\n\tmul %[t], %[t], %[x]\n\tadd %[" #A "], %[" #A "], %[t]\n\t"
#define Q8_RV_COL(XO, O) "lh %[x], " #XO "(%[xp])\n\t" Q8_RV_ROW(p0, a0, O) Q8_RV_ROW(p1, a1, O) \
                         Q8_RV_ROW(p2, a2, O) Q8_RV_ROW(p3, a3, O)
                    __asm__(Q8_RV_COL(0, 0) Q8_RV_COL(2, 1) Q8_RV_COL(4, 2) Q8_RV_COL(6, 3)
                            : [x] "=&r"(x), [t] "=&r"(t), [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3)
                            : [xp] "r"(xp), [p0] "r"(p0), [p1] "r"(p1), [p2] "r"(p2), [p3] "r"(p3)
                            : "memory");
#undef Q8_RV_COL
#undef Q8_RV_ROW
                    xp += 4, p0 += 4, p1 += 4, p2 += 4, p3 += 4;
                }
                float xsg = xsr[g];
                v0 = q8_rescale_add(v0, a0, s0[g], xsg);
                v1 = q8_rescale_add(v1, a1, s0[ng + g], xsg);
                v2 = q8_rescale_add(v2, a2, s0[2 * ng + g], xsg);
                v3 = q8_rescale_add(v3, a3, s0[3 * ng + g], xsg);
            }
            o[i] = q8_fadd(v0, b ? b[i] : 0.0f);
            o[i + 1] = q8_fadd(v1, b ? b[i + 1] : 0.0f);
            o[i + 2] = q8_fadd(v2, b ? b[i + 2] : 0.0f);
            o[i + 3] = q8_fadd(v3, b ? b[i + 3] : 0.0f);
        }
        for (; i < m; i++) {
            const int8_t *p0 = wq + (size_t)i * k;
            const float *s0 = ws + (size_t)i * ng;
            float v0 = 0.0f;
            for (int g = 0; g < ng; g++) {
                int32_t a0 = 0;
                for (int j = g * group; j < (g + 1) * group; j++) a0 += (int32_t)xr[j] * p0[j];
                v0 = q8_rescale_add(v0, a0, s0[g], xsr[g]);
            }
            o[i] = q8_fadd(v0, b ? b[i] : 0.0f);
        }
    }
}

void slmc_linear_q8_rv32(float *out, const int8_t *xq, const float *xs, const int8_t *wq, const float *ws,
                         const float *b, int16_t *xw, int n, int k, int m, int group) {
    for (size_t t = 0; t < (size_t)n * k; t++) xw[t] = xq[t];
    if (group % 4) {
        q8_rv32_body(out, xw, xs, wq, ws, b, n, k, m, group);
        return;
    }
    switch (group) {
    case 64: q8_rv32_body(out, xw, xs, wq, ws, b, n, k, m, 64); break;
    case 32: q8_rv32_body(out, xw, xs, wq, ws, b, n, k, m, 32); break;
    case 4: q8_rv32_body(out, xw, xs, wq, ws, b, n, k, m, 4); break;
    default: q8_rv32_body(out, xw, xs, wq, ws, b, n, k, m, group); break;
    }
}
