#include "slmc_kernels.h"
#include <arm_acle.h>

/* linear_q8.c for Cortex-M33 (Armv8-M DSP extension), bit-identical to it: the same exact int32
 * dot product per group, rescaled by the weight's and the activation's scales and accumulated in
 * float in group order.
 *
 * Weights come in the "rows4" blob order (quant/q8.py pack_rows4, chosen at compile time for this
 * kernel): rows in blocks of four, word-interleaved, so one LDM loads the next 4 weights of all four
 * rows; the scales of a block are [group][row]. Rows after the last full block follow row-major.
 * The activations are unpacked once per call into scratch (2*n*k bytes): each word of 4 int8
 * x0..x3 becomes the sign-extended halfword pairs (x0,x2) and (x1,x3), which is what SXTB16 and
 * SXTB16 ROR #8 make of a weight word, so two SMLADs add a word's 4 products. 16 MACs (4 columns x 4
 * rows) take 18 instructions: LDRD, LDM, 8 SXTB16, 8 SMLAD. Inline asm because gcc 12 neither folds
 * the ROR into SXTB16 nor keeps this many live values out of the stack; LDM loads registers in
 * ascending order, hence the four weight registers named explicitly. Groups are multiples of 4 (the
 * graph builder gives other groups the row-major order and the portable kernel). */
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

/* One group of four rows: LDRD (two activation pair words), LDM (the next word of each row), then per
 * row SXTB16 ROR #8 / SXTB16 and two multiply-adds into that row's accumulator (SMUAD starts it). */
#define Q8_ROW(W, A, FIRST)                                                                             \
    "sxtb16 %[t], %[" W "], ror #8\n\t"                                                                 \
    "sxtb16 %[" W "], %[" W "]\n\t" FIRST                                                              \
    "smlad  %[" A "], %[xo], %[t], %[" A "]\n\t"
#define Q8_MUL(W, A) "smuad  %[" A "], %[xe], %[" W "]\n\t"
#define Q8_MAC(W, A) "smlad  %[" A "], %[xe], %[" W "], %[" A "]\n\t"
#define Q8_LOADS "ldrd   %[xe], %[xo], [%[xp]], #8\n\tldmia  %[pw]!, {%[w0], %[w1], %[w2], %[w3]}\n\t"
#define Q8_FIRST Q8_LOADS Q8_ROW("w0", "a0", Q8_MUL("w0", "a0")) Q8_ROW("w1", "a1", Q8_MUL("w1", "a1")) \
                 Q8_ROW("w2", "a2", Q8_MUL("w2", "a2")) Q8_ROW("w3", "a3", Q8_MUL("w3", "a3"))
#define Q8_NEXT Q8_LOADS Q8_ROW("w0", "a0", Q8_MAC("w0", "a0")) Q8_ROW("w1", "a1", Q8_MAC("w1", "a1")) \
                Q8_ROW("w2", "a2", Q8_MAC("w2", "a2")) Q8_ROW("w3", "a3", Q8_MAC("w3", "a3"))
/* the rest of a group, written out (not .rept: gcc sizes an asm by its lines when it places literal pools) */
#define Q8_NEXT3 Q8_NEXT Q8_NEXT Q8_NEXT
#define Q8_NEXT7 Q8_NEXT3 Q8_NEXT3 Q8_NEXT
#define Q8_NEXT15 Q8_NEXT7 Q8_NEXT7 Q8_NEXT

/* `nb` blocks of four rows for one token: pw and sw walk through the blocks in blob order. The
 * rescale of a group, v += ((float)a * ws) * xs per row as linear_q8.c writes it, is in asm too: two
 * VMOVs bring the four sums into s0-s3 and one VLDM the four scales into s4-s7; each row's result
 * stays in s8-s11, and one VSTM stores the block. */
SLMC_ALWAYS_INLINE void q8_dsp_blocks(float *o, const uint32_t *xr, const float *xsr, const int8_t *pw,
                                      const float *sw, const float *b, int nb, int ng, const int group,
                                      int group_rt) {
    register float v0 __asm__("s8"), v1 __asm__("s9"), v2 __asm__("s10"), v3 __asm__("s11");
    const float zero = 0.0f;
    for (int blk = 0; blk < nb; blk++) {
        v0 = zero, v1 = zero, v2 = zero, v3 = zero;
        const uint32_t *xp = xr;
        for (int g = 0; g < ng; g++) {
            register uint32_t w0 __asm__("r2"), w1 __asm__("r3"), w2 __asm__("r4"), w3 __asm__("r5");
            int32_t a0, a1, a2, a3;
            uint32_t xe, xo, t;
#define Q8_OUTS(A) [xe] "=&r"(xe), [xo] "=&r"(xo), [t] "=&r"(t), [w0] "=&r"(w0), [w1] "=&r"(w1), [w2] "=&r"(w2), \
                [w3] "=&r"(w3), [a0] A(a0), [a1] A(a1), [a2] A(a2), [a3] A(a3), [pw] "+r"(pw), [xp] "+r"(xp)
#define Q8_SET "=&r"
#define Q8_ACC "+r"
            switch (group) { /* the asm reads the scratch written above and the weights: "memory" */
            case 64: __asm__(Q8_FIRST Q8_NEXT15 : Q8_OUTS(Q8_SET) : : "memory"); break;
            case 32: __asm__(Q8_FIRST Q8_NEXT7 : Q8_OUTS(Q8_SET) : : "memory"); break;
            case 16: __asm__(Q8_FIRST Q8_NEXT3 : Q8_OUTS(Q8_SET) : : "memory"); break;
            case 8: __asm__(Q8_FIRST Q8_NEXT : Q8_OUTS(Q8_SET) : : "memory"); break;
            case 4: __asm__(Q8_FIRST : Q8_OUTS(Q8_SET) : : "memory"); break;
            default: /* a group known only at run time, a multiple of 4 */
                a0 = a1 = a2 = a3 = 0;
                for (int j = 0; j < group_rt / 4; j++) __asm__(Q8_NEXT : Q8_OUTS(Q8_ACC) : : "memory");
            }
#undef Q8_OUTS
            float xsg = xsr[g];
            register float f0 __asm__("s0"), f1 __asm__("s1"), f2 __asm__("s2"), f3 __asm__("s3");
            register float c0 __asm__("s4"), c1 __asm__("s5"), c2 __asm__("s6"), c3 __asm__("s7");
            __asm__("vmov   %[f0], %[f1], %[a0], %[a1]\n\t"
                    "vmov   %[f2], %[f3], %[a2], %[a3]\n\t"
                    "vldmia %[sw]!, {%[c0], %[c1], %[c2], %[c3]}\n\t"
                    "vcvt.f32.s32 %[f0], %[f0]\n\t"
                    "vcvt.f32.s32 %[f1], %[f1]\n\t"
                    "vcvt.f32.s32 %[f2], %[f2]\n\t"
                    "vcvt.f32.s32 %[f3], %[f3]\n\t"
                    "vmul.f32 %[f0], %[f0], %[c0]\n\t"
                    "vmul.f32 %[f1], %[f1], %[c1]\n\t"
                    "vmul.f32 %[f2], %[f2], %[c2]\n\t"
                    "vmul.f32 %[f3], %[f3], %[c3]\n\t"
                    "vmul.f32 %[f0], %[f0], %[xs]\n\t"
                    "vmul.f32 %[f1], %[f1], %[xs]\n\t"
                    "vmul.f32 %[f2], %[f2], %[xs]\n\t"
                    "vmul.f32 %[f3], %[f3], %[xs]\n\t"
                    "vadd.f32 %[v0], %[v0], %[f0]\n\t"
                    "vadd.f32 %[v1], %[v1], %[f1]\n\t"
                    "vadd.f32 %[v2], %[v2], %[f2]\n\t"
                    "vadd.f32 %[v3], %[v3], %[f3]"
                    : [f0] "=&t"(f0), [f1] "=&t"(f1), [f2] "=&t"(f2), [f3] "=&t"(f3), [c0] "=&t"(c0),
                      [c1] "=&t"(c1), [c2] "=&t"(c2), [c3] "=&t"(c3), [v0] "+t"(v0), [v1] "+t"(v1),
                      [v2] "+t"(v2), [v3] "+t"(v3), [sw] "+r"(sw)
                    : [a0] "r"(a0), [a1] "r"(a1), [a2] "r"(a2), [a3] "r"(a3), [xs] "t"(xsg)
                    : "memory");
        }
        if (b) {
            register float c0 __asm__("s4"), c1 __asm__("s5"), c2 __asm__("s6"), c3 __asm__("s7");
            __asm__("vldmia %[b]!, {%[c0], %[c1], %[c2], %[c3]}\n\t"
                    "vadd.f32 %[v0], %[v0], %[c0]\n\t"
                    "vadd.f32 %[v1], %[v1], %[c1]\n\t"
                    "vadd.f32 %[v2], %[v2], %[c2]\n\t"
                    "vadd.f32 %[v3], %[v3], %[c3]\n\t"
                    "vstmia %[o]!, {%[v0], %[v1], %[v2], %[v3]}"
                    : [c0] "=&t"(c0), [c1] "=&t"(c1), [c2] "=&t"(c2), [c3] "=&t"(c3), [v0] "+t"(v0),
                      [v1] "+t"(v1), [v2] "+t"(v2), [v3] "+t"(v3), [o] "+r"(o), [b] "+r"(b)
                    :
                    : "memory");
        } else {
            __asm__("vadd.f32 %[v0], %[v0], %[z]\n\t" /* + 0.0f as linear_q8.c adds it: -0 becomes +0 */
                    "vadd.f32 %[v1], %[v1], %[z]\n\t"
                    "vadd.f32 %[v2], %[v2], %[z]\n\t"
                    "vadd.f32 %[v3], %[v3], %[z]\n\t"
                    "vstmia %[o]!, {%[v0], %[v1], %[v2], %[v3]}"
                    : [v0] "+t"(v0), [v1] "+t"(v1), [v2] "+t"(v2), [v3] "+t"(v3), [o] "+r"(o)
                    : [z] "t"(zero)
                    : "memory");
        }
    }
}

#define Q8_BLOCKS_FOR(G)                                                                                      \
    static __attribute__((noinline)) void q8_dsp_blocks_##G(float *o, const uint32_t *xr, const float *xsr,  \
                                                            const int8_t *pw, const float *sw, const float *b, \
                                                            int nb, int ng) {                                  \
        q8_dsp_blocks(o, xr, xsr, pw, sw, b, nb, ng, G, G);                                                      \
    }
Q8_BLOCKS_FOR(64)
Q8_BLOCKS_FOR(32)
Q8_BLOCKS_FOR(16)
Q8_BLOCKS_FOR(8)

/* Groups of 4 (k = 172 in stories260K's w2): one group is one step, so the rescale dominates and the group loop is
 * in the asm too, every group's VLDR of the activation scale and the loop test with it (gcc spills the scale and end
 * pointers around a per-group asm: 44 instructions per 16 MACs there, 40 here). Each row's sum starts in a fresh
 * register (SXTB16 ROR #8 into it, SMUAD) and the next row's sum reuses the weight register just consumed, so the
 * loop needs 12 registers. */
static __attribute__((noinline)) void q8_dsp_blocks_4(float *o, const uint32_t *xr, const float *xsr,
                                                      const int8_t *pw, const float *sw, const float *b, int nb,
                                                      int ng) {
    register float v0 __asm__("s8"), v1 __asm__("s9"), v2 __asm__("s10"), v3 __asm__("s11");
    const float zero = 0.0f;
    const uint32_t *xe_end = xr + 2 * (size_t)ng;
    for (int blk = 0; blk < nb; blk++) {
        v0 = zero, v1 = zero, v2 = zero, v3 = zero;
        if (ng > 0) {
            const uint32_t *xp = xr;
            const float *xsp = xsr;
            register uint32_t w0 __asm__("r2"), w1 __asm__("r3"), w2 __asm__("r4"), w3 __asm__("r5");
            uint32_t xe, xo, a0;
            __asm__("1:\n\t"
                    "ldrd   %[xe], %[xo], [%[xp]], #8\n\t"
                    "ldmia  %[pw]!, {%[w0], %[w1], %[w2], %[w3]}\n\t"
                    "sxtb16 %[a0], %[w0], ror #8\n\t"
                    "smuad  %[a0], %[xo], %[a0]\n\t"
                    "sxtb16 %[w0], %[w0]\n\t"
                    "smlad  %[a0], %[xe], %[w0], %[a0]\n\t"
                    "sxtb16 %[w0], %[w1], ror #8\n\t"
                    "smuad  %[w0], %[xo], %[w0]\n\t"
                    "sxtb16 %[w1], %[w1]\n\t"
                    "smlad  %[w0], %[xe], %[w1], %[w0]\n\t"
                    "sxtb16 %[w1], %[w2], ror #8\n\t"
                    "smuad  %[w1], %[xo], %[w1]\n\t"
                    "sxtb16 %[w2], %[w2]\n\t"
                    "smlad  %[w1], %[xe], %[w2], %[w1]\n\t"
                    "sxtb16 %[w2], %[w3], ror #8\n\t"
                    "smuad  %[w2], %[xo], %[w2]\n\t"
                    "sxtb16 %[w3], %[w3]\n\t"
                    "smlad  %[w2], %[xe], %[w3], %[w2]\n\t"
                    "vmov   s0, s1, %[a0], %[w0]\n\t"
                    "vmov   s2, s3, %[w1], %[w2]\n\t"
                    "vldmia %[sw]!, {s4, s5, s6, s7}\n\t"
                    "vldmia %[xsp]!, {s12}\n\t"
                    "vcvt.f32.s32 s0, s0\n\t"
                    "vcvt.f32.s32 s1, s1\n\t"
                    "vcvt.f32.s32 s2, s2\n\t"
                    "vcvt.f32.s32 s3, s3\n\t"
                    "vmul.f32 s0, s0, s4\n\t"
                    "vmul.f32 s1, s1, s5\n\t"
                    "vmul.f32 s2, s2, s6\n\t"
                    "vmul.f32 s3, s3, s7\n\t"
                    "vmul.f32 s0, s0, s12\n\t"
                    "vmul.f32 s1, s1, s12\n\t"
                    "vmul.f32 s2, s2, s12\n\t"
                    "vmul.f32 s3, s3, s12\n\t"
                    "vadd.f32 %[v0], %[v0], s0\n\t"
                    "vadd.f32 %[v1], %[v1], s1\n\t"
                    "vadd.f32 %[v2], %[v2], s2\n\t"
                    "vadd.f32 %[v3], %[v3], s3\n\t"
                    "cmp    %[xp], %[end]\n\t"
                    "bne    1b"
                    : [xe] "=&r"(xe), [xo] "=&r"(xo), [a0] "=&r"(a0), [w0] "=&r"(w0), [w1] "=&r"(w1), [w2] "=&r"(w2),
                      [w3] "=&r"(w3), [v0] "+t"(v0), [v1] "+t"(v1),
                      [v2] "+t"(v2), [v3] "+t"(v3), [pw] "+r"(pw), [sw] "+r"(sw), [xp] "+r"(xp), [xsp] "+r"(xsp)
                    : [end] "r"(xe_end)
                    : "memory", "cc", "s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "s12");
        }
        if (b) {
            register float c0 __asm__("s4"), c1 __asm__("s5"), c2 __asm__("s6"), c3 __asm__("s7");
            __asm__("vldmia %[b]!, {%[c0], %[c1], %[c2], %[c3]}\n\t"
                    "vadd.f32 %[v0], %[v0], %[c0]\n\t"
                    "vadd.f32 %[v1], %[v1], %[c1]\n\t"
                    "vadd.f32 %[v2], %[v2], %[c2]\n\t"
                    "vadd.f32 %[v3], %[v3], %[c3]\n\t"
                    "vstmia %[o]!, {%[v0], %[v1], %[v2], %[v3]}"
                    : [c0] "=&t"(c0), [c1] "=&t"(c1), [c2] "=&t"(c2), [c3] "=&t"(c3), [v0] "+t"(v0),
                      [v1] "+t"(v1), [v2] "+t"(v2), [v3] "+t"(v3), [o] "+r"(o), [b] "+r"(b)
                    :
                    : "memory");
        } else {
            __asm__("vadd.f32 %[v0], %[v0], %[z]\n\t" /* + 0.0f as linear_q8.c adds it: -0 becomes +0 */
                    "vadd.f32 %[v1], %[v1], %[z]\n\t"
                    "vadd.f32 %[v2], %[v2], %[z]\n\t"
                    "vadd.f32 %[v3], %[v3], %[z]\n\t"
                    "vstmia %[o]!, {%[v0], %[v1], %[v2], %[v3]}"
                    : [v0] "+t"(v0), [v1] "+t"(v1), [v2] "+t"(v2), [v3] "+t"(v3), [o] "+r"(o)
                    : [z] "t"(zero)
                    : "memory");
        }
    }
}

/* One group per row (k == group: every k = 64 product of stories260K), the blocks' loop without a group loop: the
 * activation scale is the same for every block (kept in s12), and per block the sums' rescale, the 0.0f they start
 * from, the bias (or + 0.0f) and the store are one asm, v = (0.0f + ((float)a * ws) * xs) + b in linear_q8.c's order:
 * about 20 instructions a block fewer than q8_dsp_blocks' general loop. */
SLMC_ALWAYS_INLINE void q8_dsp_one_group(float *o, const uint32_t *xr, float xs, const int8_t *pw, const float *sw,
                                         const float *b, int nb, const int group) {
    register float xsg __asm__("s12") = xs;
    const float zero = 0.0f;
    for (int blk = 0; blk < nb; blk++) {
        register uint32_t w0 __asm__("r2"), w1 __asm__("r3"), w2 __asm__("r4"), w3 __asm__("r5");
        int32_t a0, a1, a2, a3;
        uint32_t xe, xo, t;
        const uint32_t *xp = xr;
#define Q8_OUTS1 [xe] "=&r"(xe), [xo] "=&r"(xo), [t] "=&r"(t), [w0] "=&r"(w0), [w1] "=&r"(w1), [w2] "=&r"(w2), \
                 [w3] "=&r"(w3), [a0] "=&r"(a0), [a1] "=&r"(a1), [a2] "=&r"(a2), [a3] "=&r"(a3), [pw] "+r"(pw), [xp] "+r"(xp)
        switch (group) {
        case 64: __asm__(Q8_FIRST Q8_NEXT15 : Q8_OUTS1 : : "memory"); break;
        case 32: __asm__(Q8_FIRST Q8_NEXT7 : Q8_OUTS1 : : "memory"); break;
        default: __asm__(Q8_FIRST Q8_NEXT3 : Q8_OUTS1 : : "memory"); break; /* 16 */
        }
#undef Q8_OUTS1
#define Q8_RESCALE1                                                                                                  \
    "vmov   s0, s1, %[a0], %[a1]\n\t"                                                                                \
    "vmov   s2, s3, %[a2], %[a3]\n\t"                                                                                \
    "vldmia %[sw]!, {s4, s5, s6, s7}\n\t"                                                                            \
    "vcvt.f32.s32 s0, s0\n\t"                                                                                        \
    "vcvt.f32.s32 s1, s1\n\t"                                                                                        \
    "vcvt.f32.s32 s2, s2\n\t"                                                                                        \
    "vcvt.f32.s32 s3, s3\n\t"                                                                                        \
    "vmul.f32 s0, s0, s4\n\t"                                                                                        \
    "vmul.f32 s1, s1, s5\n\t"                                                                                        \
    "vmul.f32 s2, s2, s6\n\t"                                                                                        \
    "vmul.f32 s3, s3, s7\n\t"                                                                                        \
    "vmul.f32 s0, s0, %[xs]\n\t"                                                                                     \
    "vmul.f32 s1, s1, %[xs]\n\t"                                                                                     \
    "vmul.f32 s2, s2, %[xs]\n\t"                                                                                     \
    "vmul.f32 s3, s3, %[xs]\n\t"                                                                                     \
    "vadd.f32 s0, %[z], s0\n\t"                                                                                      \
    "vadd.f32 s1, %[z], s1\n\t"                                                                                      \
    "vadd.f32 s2, %[z], s2\n\t"                                                                                      \
    "vadd.f32 s3, %[z], s3\n\t"
        if (b) {
            __asm__ volatile(Q8_RESCALE1
                    "vldmia %[b]!, {s4, s5, s6, s7}\n\t"
                    "vadd.f32 s0, s0, s4\n\t"
                    "vadd.f32 s1, s1, s5\n\t"
                    "vadd.f32 s2, s2, s6\n\t"
                    "vadd.f32 s3, s3, s7\n\t"
                    "vstmia %[o]!, {s0, s1, s2, s3}"
                    : [sw] "+r"(sw), [o] "+r"(o), [b] "+r"(b)
                    : [a0] "r"(a0), [a1] "r"(a1), [a2] "r"(a2), [a3] "r"(a3), [xs] "t"(xsg), [z] "t"(zero)
                    : "memory", "s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7");
        } else {
            __asm__ volatile(Q8_RESCALE1
                    "vadd.f32 s0, s0, %[z]\n\t" /* + 0.0f as linear_q8.c adds it */
                    "vadd.f32 s1, s1, %[z]\n\t"
                    "vadd.f32 s2, s2, %[z]\n\t"
                    "vadd.f32 s3, s3, %[z]\n\t"
                    "vstmia %[o]!, {s0, s1, s2, s3}"
                    : [sw] "+r"(sw), [o] "+r"(o)
                    : [a0] "r"(a0), [a1] "r"(a1), [a2] "r"(a2), [a3] "r"(a3), [xs] "t"(xsg), [z] "t"(zero)
                    : "memory", "s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7");
        }
#undef Q8_RESCALE1
    }
}

#define Q8_ONE_FOR(G)                                                                                          \
    static __attribute__((noinline)) void q8_dsp_one_##G(float *o, const uint32_t *xr, float xs, const int8_t *pw, \
                                                         const float *sw, const float *b, int nb) {              \
        q8_dsp_one_group(o, xr, xs, pw, sw, b, nb, G);                                                          \
    }
Q8_ONE_FOR(64)
Q8_ONE_FOR(32)
Q8_ONE_FOR(16)

static __attribute__((noinline)) void q8_dsp_blocks_any(float *o, const uint32_t *xr, const float *xsr,
                                                        const int8_t *pw, const float *sw, const float *b, int nb,
                                                        int ng, int group) {
    q8_dsp_blocks(o, xr, xsr, pw, sw, b, nb, ng, 0, group);
}

void slmc_linear_q8_dsp(float *out, const int8_t *xq, const float *xs, const int8_t *wq, const float *ws,
                        const float *b, uint32_t *xw, int n, int k, int m, int group) {
    const int ng = k / group, nb = m / 4;
    const size_t words = (size_t)n * k / 4;
    const int8_t *src = xq;
    uint32_t *dst = xw;
    for (size_t t = 0; t + 2 <= words; t += 2) {
        /* 8 activations in 6 instructions; STM stores registers in ascending order, hence the names */
        register uint32_t e0 __asm__("r2"), o0 __asm__("r3"), e1 __asm__("r4"), o1 __asm__("r5");
        __asm__("ldrd   %[e0], %[e1], [%[src]], #8\n\t" /* xq is an arena buffer: 16-byte aligned, k % 4 == 0 */
                "sxtb16 %[o0], %[e0], ror #8\n\t"
                "sxtb16 %[e0], %[e0]\n\t"
                "sxtb16 %[o1], %[e1], ror #8\n\t"
                "sxtb16 %[e1], %[e1]\n\t"
                "stmia  %[dst]!, {%[e0], %[o0], %[e1], %[o1]}"
                : [e0] "=&r"(e0), [o0] "=&r"(o0), [e1] "=&r"(e1), [o1] "=&r"(o1), [src] "+r"(src), [dst] "+r"(dst)
                :
                : "memory");
    }
    if (words % 2) {
        uint32_t v = q8_ld32(src);
        dst[0] = __sxtb16(v);
        dst[1] = __sxtb16(q8_ror8(v));
    }
    for (int s = 0; s < n; s++) {
        const uint32_t *xr = xw + (size_t)s * (k / 2);
        const float *xsr = xs + (size_t)s * ng;
        float *o = out + (size_t)s * m;
        if (ng == 1 && (group == 64 || group == 32 || group == 16)) {
            if (group == 64) q8_dsp_one_64(o, xr, xsr[0], wq, ws, b, nb);
            else if (group == 32) q8_dsp_one_32(o, xr, xsr[0], wq, ws, b, nb);
            else q8_dsp_one_16(o, xr, xsr[0], wq, ws, b, nb);
        } else switch (group) {
        case 64: q8_dsp_blocks_64(o, xr, xsr, wq, ws, b, nb, ng); break;
        case 32: q8_dsp_blocks_32(o, xr, xsr, wq, ws, b, nb, ng); break;
        case 16: q8_dsp_blocks_16(o, xr, xsr, wq, ws, b, nb, ng); break;
        case 8: q8_dsp_blocks_8(o, xr, xsr, wq, ws, b, nb, ng); break;
        case 4: q8_dsp_blocks_4(o, xr, xsr, wq, ws, b, nb, ng); break;
        default: q8_dsp_blocks_any(o, xr, xsr, wq, ws, b, nb, ng, group); break;
        }
        /* the rows after the last full block, row-major */
        for (int i = 4 * nb; i < m; i++) {
            const int8_t *p0 = wq + (size_t)i * k;
            const float *s0 = ws + (size_t)i * ng;
            const uint32_t *xp = xr;
            float v0 = 0.0f;
            for (int g = 0; g < ng; g++) {
                int32_t a0 = 0;
                for (int j = 0; j < group / 4; j++, p0 += 4, xp += 2) {
                    uint32_t w = q8_ld32(p0);
                    a0 = (int32_t)__smlad(xp[0], __sxtb16(w), (uint32_t)a0);
                    a0 = (int32_t)__smlad(xp[1], __sxtb16(q8_ror8(w)), (uint32_t)a0);
                }
                v0 += ((float)a0) * s0[g] * xsr[g];
            }
            o[i] = v0 + (b ? b[i] : 0.0f);
        }
    }
}
