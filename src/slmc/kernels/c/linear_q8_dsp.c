#include "slmc_kernels.h"
#include <arm_acle.h>

/* linear_q8.c for Cortex-M33 (Armv8-M DSP extension), bit-identical to it: the same exact int32
 * dot product per group, rescaled by the weight's and the activation's scales and accumulated in
 * float in group order.
 * The activations are unpacked once per call into scratch (2*n*k bytes): each word of 4 int8
 * x0..x3 becomes the sign-extended halfword pairs (x0,x2) and (x1,x3). Each weight word is then
 * split the same way with SXTB16 (and SXTB16 ROR #8) and two SMLADs add its 4 products. Four output
 * rows share every activation pair that is loaded (one LDRD): 21 instructions for 16 MACs, written
 * in inline asm because gcc 12 neither folds the ROR into SXTB16 nor keeps the 4-row loop out of
 * the stack. Groups that are not a multiple of 4 take the plain loop. */
#if defined(__GNUC__)
#define SLMC_ALWAYS_INLINE static inline __attribute__((always_inline))
#else
#define SLMC_ALWAYS_INLINE static inline
#endif

static inline uint32_t q8_ld32(const int8_t *p) {
    uint32_t v;
    memcpy(&v, p, 4); /* one LDR: Armv8-M mainline allows unaligned word loads */
    return v;
}

static inline uint32_t q8_ror8(uint32_t x) { return (x >> 8) | (x << 24); }

#define Q8_MAC4(acc, xe, xo, p)                                                                   \
    do {                                                                                          \
        uint32_t w_ = q8_ld32(p);                                                                 \
        (p) += 4;                                                                                 \
        (acc) = (int32_t)__smlad((xe), __sxtb16(w_), (acc));                                     \
        (acc) = (int32_t)__smlad((xo), __sxtb16(q8_ror8(w_)), (acc));                           \
    } while (0)

/* Four output rows starting at p0 (weights) and s0 (their scales), one token: a function of its
 * own so that the register allocator sees only what the 4-row loop needs. */
SLMC_ALWAYS_INLINE void q8_dsp_rows4(float *o, const uint32_t *xp, const float *xsr, const int8_t *p0,
                                     const float *s0, const float *b, int k, int ng, const int group) {
    const int8_t *p1 = p0 + k, *p2 = p1 + k, *p3 = p2 + k;
    float v0 = 0.0f, v1 = 0.0f, v2 = 0.0f, v3 = 0.0f;
    for (int g = 0; g < ng; g++) {
        int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
#pragma GCC unroll 16
        for (int j = 0; j < group / 4; j++) {
            /* 21 instructions for 16 MACs; SXTB16's ROR #8 operand picks the odd bytes */
            uint32_t xe, xo, t0, t1;
            __asm__("ldrd   %[xe], %[xo], [%[xp]], #8\n\t"
                    "ldr    %[t0], [%[p0]], #4\n\t"
                    "sxtb16 %[t1], %[t0], ror #8\n\t"
                    "sxtb16 %[t0], %[t0]\n\t"
                    "smlad  %[a0], %[xe], %[t0], %[a0]\n\t"
                    "smlad  %[a0], %[xo], %[t1], %[a0]\n\t"
                    "ldr    %[t0], [%[p1]], #4\n\t"
                    "sxtb16 %[t1], %[t0], ror #8\n\t"
                    "sxtb16 %[t0], %[t0]\n\t"
                    "smlad  %[a1], %[xe], %[t0], %[a1]\n\t"
                    "smlad  %[a1], %[xo], %[t1], %[a1]\n\t"
                    "ldr    %[t0], [%[p2]], #4\n\t"
                    "sxtb16 %[t1], %[t0], ror #8\n\t"
                    "sxtb16 %[t0], %[t0]\n\t"
                    "smlad  %[a2], %[xe], %[t0], %[a2]\n\t"
                    "smlad  %[a2], %[xo], %[t1], %[a2]\n\t"
                    "ldr    %[t0], [%[p3]], #4\n\t"
                    "sxtb16 %[t1], %[t0], ror #8\n\t"
                    "sxtb16 %[t0], %[t0]\n\t"
                    "smlad  %[a3], %[xe], %[t0], %[a3]\n\t"
                    "smlad  %[a3], %[xo], %[t1], %[a3]"
                    : [xe] "=&r"(xe), [xo] "=&r"(xo), [t0] "=&r"(t0), [t1] "=&r"(t1),
                      [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3),
                      [p0] "+r"(p0), [p1] "+r"(p1), [p2] "+r"(p2), [p3] "+r"(p3), [xp] "+r"(xp)
                    :
                    : "memory"); /* reads the scratch written above and the weights */
        }
        float xsg = xsr[g];
        const float *sg = s0 + g;
        v0 += ((float)a0) * sg[0] * xsg;
        sg += ng;
        v1 += ((float)a1) * sg[0] * xsg;
        sg += ng;
        v2 += ((float)a2) * sg[0] * xsg;
        sg += ng;
        v3 += ((float)a3) * sg[0] * xsg;
    }
    o[0] = v0 + (b ? b[0] : 0.0f);
    o[1] = v1 + (b ? b[1] : 0.0f);
    o[2] = v2 + (b ? b[2] : 0.0f);
    o[3] = v3 + (b ? b[3] : 0.0f);
}

#define Q8_ROWS4_FOR(G)                                                                                     \
    static __attribute__((noinline)) void q8_dsp_rows4_##G(float *o, const uint32_t *xp, const float *xsr,  \
                                                           const int8_t *p0, const float *s0, const float *b, \
                                                           int k, int ng) {                                  \
        q8_dsp_rows4(o, xp, xsr, p0, s0, b, k, ng, G);                                                      \
    }
Q8_ROWS4_FOR(64)
Q8_ROWS4_FOR(32)
Q8_ROWS4_FOR(16)
Q8_ROWS4_FOR(4)
static __attribute__((noinline)) void q8_dsp_rows4_any(float *o, const uint32_t *xp, const float *xsr,
                                                       const int8_t *p0, const float *s0, const float *b, int k,
                                                       int ng) {
    q8_dsp_rows4(o, xp, xsr, p0, s0, b, k, ng, k / ng);
}

static void q8_dsp_body(float *out, const uint32_t *xw, const float *xs, const int8_t *wq, const float *ws,
                        const float *b, int n, int k, int m, int group) {
    const int ng = k / group;
    void (*rows4)(float *, const uint32_t *, const float *, const int8_t *, const float *, const float *, int, int) =
        group == 64 ? q8_dsp_rows4_64 : group == 32 ? q8_dsp_rows4_32 : group == 16 ? q8_dsp_rows4_16
        : group == 4 ? q8_dsp_rows4_4 : q8_dsp_rows4_any;
    for (int s = 0; s < n; s++) {
        const uint32_t *xr = xw + (size_t)s * (k / 2);
        const float *xsr = xs + (size_t)s * ng;
        float *o = out + (size_t)s * m;
        int i = 0;
        for (; i + 4 <= m; i += 4)
            rows4(o + i, xr, xsr, wq + (size_t)i * k, ws + (size_t)i * ng, b ? b + i : 0, k, ng);
        for (; i < m; i++) {
            const int8_t *p0 = wq + (size_t)i * k;
            const float *s0 = ws + (size_t)i * ng;
            float v0 = 0.0f;
            const uint32_t *xp = xr;
            for (int g = 0; g < ng; g++) {
                int32_t a0 = 0;
                for (int j = 0; j < group / 4; j++) {
                    uint32_t xe = xp[0], xo = xp[1];
                    xp += 2;
                    Q8_MAC4(a0, xe, xo, p0);
                }
                v0 += ((float)a0) * s0[g] * xsr[g];
            }
            o[i] = v0 + (b ? b[i] : 0.0f);
        }
    }
}

void slmc_linear_q8_dsp(float *out, const int8_t *xq, const float *xs, const int8_t *wq, const float *ws,
                        const float *b, uint32_t *xw, int n, int k, int m, int group) {
    int ng = k / group;
    if (group % 4) {
        for (int i = 0; i < m; i++)
            for (int s = 0; s < n; s++) {
                float val = 0.0f;
                for (int g = 0; g < ng; g++) {
                    int32_t iv = 0;
                    for (int j = g * group; j < (g + 1) * group; j++)
                        iv += (int32_t)xq[(size_t)s * k + j] * wq[(size_t)i * k + j];
                    val += ((float)iv) * ws[(size_t)i * ng + g] * xs[(size_t)s * ng + g];
                }
                out[(size_t)s * m + i] = val + (b ? b[i] : 0.0f);
            }
        return;
    }
    for (size_t t = 0; t < (size_t)n * k / 4; t++) {
        uint32_t v = q8_ld32(xq + 4 * t);
        xw[2 * t] = __sxtb16(v);
        xw[2 * t + 1] = __sxtb16(q8_ror8(v));
    }
    q8_dsp_body(out, xw, xs, wq, ws, b, n, k, m, group);
}
