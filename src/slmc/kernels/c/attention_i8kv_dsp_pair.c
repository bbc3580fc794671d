#include "slmc_kernels.h"
#include <arm_acle.h>

/* attention_i8kv_dsp.c's path for head_dim 8 and two query heads per KV head (stories260K), bit-identical to
 * attention_i8kv.c as the rest of attention_i8kv_dsp.c is; a file of its own for its size (it is that kernel's:
 * registered as its dependency, kernels/llm.py). The helpers below are attention_i8kv_dsp.c's. */

static inline uint32_t i8kv_lo(uint32_t a, uint32_t b) {
    uint32_t r;
    __asm__("pkhbt %0, %1, %2, lsl #16" : "=r"(r) : "r"(a), "r"(b));
    return r;
}

typedef uint32_t __attribute__((may_alias, aligned(2))) i8kv_u32;
static inline uint32_t i8kv_w(const int8_t *p) { return *(const i8kv_u32 *)__builtin_assume_aligned(p, 2); }

static inline uint32_t i8kv_odd(uint32_t x) {
    uint32_t r;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(x));
    return r;
}

/* head_dim 8, no soft-cap, two query heads per KV head (stories260K; one pair, so both queries are read before
 * either output is written, as the overlap contract says): the scores and the softmax of the two heads in one pass
 * each, in asm (every register named: 8 query pairs, the key word, its half, two sums, the pointers; gcc spills at
 * this count). The two heads' scores and weights lie interleaved, [a_t, b_t], in the first
 * head's scratch (2 * count floats of the pair's 2 * stride). The float steps are i8kv_scores' and the softmax
 * loop's own single operations in their order (IEEE products commute), so the bits are the same:
 *   i8kv_scores2  per position: key words unpacked once for both heads, 2 x 4 SMLAD, the scores
 *        (float)dot * (sk * c2) and their maxima (VMAXNM): 31 instructions for 2 x 8 MACs, the binary16 scale
 *        by LDRH, VMOV, VCVTB;
 *   i8kv_softmax2  per position: slmc_i8kv_exp2 for both heads, paired VMOVs for the exponent add, the sums and
 *        w = e * sv with their maxima: 45 instructions with the scale's conversion.
 * The row stride and the loop end sit in s14/s15 (no core register is left for them). */
#if defined(__ARM_FEATURE_DSP) && defined(__thumb2__) && defined(__ARM_FP) && defined(__GNUC__)
struct i8kv_pair {
    uint32_t q[8];         /*  0: head a's (q0,q2) (q1,q3) (q4,q6) (q5,q7), then head b's */
    uint32_t row;          /* 32: bytes between positions */
    float c2a, c2b;        /* 36, 40: the score factors */
    float mxa, mxb;        /* 44, 48: the scores' maxima (out of i8kv_scores2, into i8kv_softmax2) */
    float suma, sumb;      /* 52, 56: out of i8kv_softmax2 */
    float wa, wb;          /* 60, 64: the weights' maxima, out */
    float k[6];            /* 68: -125, the polynomial's 4 coefficients (highest first), 1 */
};

/* r0 att (interleaved out), r1 the first key record, r2 count (>= 1), r3 the struct */
__attribute__((naked, noinline)) static void i8kv_scores2(float *att, const int8_t *k, int count, struct i8kv_pair *p) {
    __asm__ volatile(
        "push   {r3, r4, r5, r6, r7, r8, r9, r10, r11, lr}\n\t"
        "ldmia  r3, {r4, r5, r6, r7, r8, r9, r10, r11}\n\t"
        "ldr    r12, [r3, #32]\n\t"
        "vmov   s14, r12\n\t"
        "mla    r12, r2, r12, r1\n\t"
        "vmov   s15, r12\n\t"
        "vldr   s0, [r3, #36]\n\t"
        "vldr   s1, [r3, #40]\n\t"
        "vldr   s8, [r3, #44]\n\t"
        "vldr   s9, [r3, #48]\n"
        "1:\n\t"
        "ldr    r3, [r1]\n\t"
        "sxtb16 r12, r3\n\t"
        "smuad  lr, r4, r12\n\t"
        "smuad  r2, r8, r12\n\t"
        "sxtb16 r12, r3, ror #8\n\t"
        "smlad  lr, r5, r12, lr\n\t"
        "smlad  r2, r9, r12, r2\n\t"
        "ldr    r3, [r1, #4]\n\t"
        "sxtb16 r12, r3\n\t"
        "smlad  lr, r6, r12, lr\n\t"
        "smlad  r2, r10, r12, r2\n\t"
        "sxtb16 r12, r3, ror #8\n\t"
        "smlad  lr, r7, r12, lr\n\t"
        "smlad  r2, r11, r12, r2\n\t"
        "ldrh   r3, [r1, #8]\n\t"
        "vmov   s4, r3\n\t"
        "vcvtb.f32.f16 s4, s4\n\t"
        "vmov   s2, s3, lr, r2\n\t"
        "vmov   r3, s14\n\t"
        "add    r1, r1, r3\n\t"
        "vcvt.f32.s32 s2, s2\n\t"
        "vcvt.f32.s32 s3, s3\n\t"
        "vmul.f32 s5, s4, s0\n\t"
        "vmul.f32 s6, s4, s1\n\t"
        "vmul.f32 s2, s2, s5\n\t"
        "vmul.f32 s3, s3, s6\n\t"
        "vstmia r0!, {s2, s3}\n\t"
        "vmaxnm.f32 s8, s8, s2\n\t"
        "vmaxnm.f32 s9, s9, s3\n\t"
        "vmov   r3, s15\n\t"
        "cmp    r1, r3\n\t"
        "bne    1b\n\t"
        "ldr    r3, [sp]\n\t"
        "vstr   s8, [r3, #44]\n\t"
        "vstr   s9, [r3, #48]\n\t"
        "pop    {r3, r4, r5, r6, r7, r8, r9, r10, r11, pc}\n\t");
}

/* r0 att (interleaved scores in, weights out), r1 the first value record's scale, r2 count (>= 1), r3 the struct */
__attribute__((naked, noinline)) static void i8kv_softmax2(float *att, const int8_t *sv, int count,
                                                           struct i8kv_pair *p) {
    __asm__ volatile(
        "push   {r3, r4, r5, r6, r7, lr}\n\t"
        "vpush  {s16-s21}\n\t"
        "ldr    r12, [r3, #32]\n\t"
        "add    r2, r0, r2, lsl #3\n\t"
        "vldr   s8, [r3, #44]\n\t"
        "vldr   s9, [r3, #48]\n\t"
        "add    r4, r3, #68\n\t"
        "vldmia r4, {s10-s15}\n\t"
        "vldr   s16, [r3, #52]\n\t"
        "vmov.f32 s17, s16\n\t"
        "vmov.f32 s18, s16\n\t"
        "vmov.f32 s19, s16\n"
        "1:\n\t"
        "vldmia r0, {s0, s1}\n\t"
        "vsub.f32 s0, s0, s8\n\t"
        "vsub.f32 s1, s1, s9\n\t"
        "vmaxnm.f32 s0, s0, s10\n\t"
        "vmaxnm.f32 s1, s1, s10\n\t"
        "vcvt.s32.f32 s2, s0\n\t"
        "vcvt.s32.f32 s3, s1\n\t"
        "vcvt.f32.s32 s20, s2\n\t"
        "vcvt.f32.s32 s21, s3\n\t"
        "vsub.f32 s0, s0, s20\n\t"
        "vsub.f32 s1, s1, s21\n\t"
        "vmul.f32 s4, s11, s0\n\t"
        "vmul.f32 s5, s11, s1\n\t"
        "vadd.f32 s4, s4, s12\n\t"
        "vadd.f32 s5, s5, s12\n\t"
        "vmul.f32 s4, s4, s0\n\t"
        "vmul.f32 s5, s5, s1\n\t"
        "vadd.f32 s4, s4, s13\n\t"
        "vadd.f32 s5, s5, s13\n\t"
        "vmul.f32 s4, s4, s0\n\t"
        "vmul.f32 s5, s5, s1\n\t"
        "vadd.f32 s4, s4, s14\n\t"
        "vadd.f32 s5, s5, s14\n\t"
        "vmul.f32 s4, s4, s0\n\t"
        "vmul.f32 s5, s5, s1\n\t"
        "vadd.f32 s4, s4, s15\n\t"
        "vadd.f32 s5, s5, s15\n\t"
        "vmov   r4, r5, s2, s3\n\t"
        "vmov   r6, r7, s4, s5\n\t"
        "add    r6, r6, r4, lsl #23\n\t"
        "add    r7, r7, r5, lsl #23\n\t"
        "vmov   s4, s5, r6, r7\n\t"
        "ldrh   r4, [r1]\n\t"
        "add    r1, r1, r12\n\t"
        "vmov   s6, r4\n\t"
        "vcvtb.f32.f16 s6, s6\n\t"
        "vmul.f32 s0, s4, s6\n\t"
        "vmul.f32 s1, s5, s6\n\t"
        "vstmia r0!, {s0, s1}\n\t"
        "vadd.f32 s16, s16, s4\n\t"
        "vadd.f32 s17, s17, s5\n\t"
        "vmaxnm.f32 s18, s18, s0\n\t"
        "vmaxnm.f32 s19, s19, s1\n\t"
        "cmp    r0, r2\n\t"
        "bne    1b\n\t"
        "ldr    r3, [sp, #24]\n\t"
        "add    r4, r3, #52\n\t"
        "vstmia r4, {s16-s19}\n\t"
        "vpop   {s16-s21}\n\t"
        "pop    {r3, r4, r5, r6, r7, pc}\n\t");
}

/* i8kv_pass2 in asm, for count / 2 pairs of positions (the odd last one is the caller's), two pairs per turn
 * (an odd number of pairs enters at the second): per pair LDR, LDR, ADD, 2 SXTB16, PKHBT, PKHTB, LDRD and 4
 * SMLAD, 12 instructions for 2 heads x 2 positions x 2 outputs (gcc's i8kv_pass2: 15). r0 the 4 sums (out),
 * r1 the interleaved weight pairs, r2 the value word of the first position, r3 {row, pairs}. */
#define I8KV_PV_PAIR(X)                                                                                           \
    "ldr    r8, [r2]\n\t"                                                                                       \
    "ldr    r9, [r2, r12]\n\t"                                                                                  \
    "add    r2, r2, r12, lsl #1\n\t"                                                                            \
    "sxtb16 r8, r8" X "\n\t"                                                                                    \
    "sxtb16 r9, r9" X "\n\t"                                                                                    \
    "pkhbt  r10, r8, r9, lsl #16\n\t"                                                                           \
    "pkhtb  r9, r9, r8, asr #16\n\t"                                                                            \
    "ldrd   r8, r11, [r1], #8\n\t"                                                                              \
    "smlad  r4, r10, r8, r4\n\t"                                                                                \
    "smlad  r5, r9, r8, r5\n\t"                                                                                 \
    "smlad  r6, r10, r11, r6\n\t"                                                                               \
    "smlad  r7, r9, r11, r7\n\t"
#define I8KV_PV_FN(NAME, X)                                                                                       \
    __attribute__((naked, noinline)) static void NAME(int32_t *r, const uint32_t *wp, const int8_t *vw,          \
                                                      const int32_t *ctl) {                                        \
        __asm__ volatile("push   {r0, r4, r5, r6, r7, r8, r9, r10, r11, lr}\n\t"                                \
                         "ldrd   r12, r4, [r3]\n\t"                                                            \
                         "add    lr, r1, r4, lsl #3\n\t"                                                       \
                         "and    r3, r4, #1\n\t"                                                               \
                         "mov    r4, #0\n\t"                                                                   \
                         "mov    r5, #0\n\t"                                                                   \
                         "mov    r6, #0\n\t"                                                                   \
                         "mov    r7, #0\n\t"                                                                   \
                         "cmp    r1, lr\n\t"                                                                   \
                         "beq    3f\n\t"                                                                       \
                         "cmp    r3, #0\n\t"                                                                   \
                         "bne    2f\n"                                                                         \
                         "1:\n\t" I8KV_PV_PAIR(X) "2:\n\t" I8KV_PV_PAIR(X)                                     \
                         "cmp    r1, lr\n\t"                                                                   \
                         "bne    1b\n"                                                                         \
                         "3:\n\t"                                                                              \
                         "ldr    r0, [sp]\n\t"                                                                 \
                         "stmia  r0, {r4, r5, r6, r7}\n\t"                                                     \
                         "pop    {r0, r4, r5, r6, r7, r8, r9, r10, r11, pc}\n\t");                            \
    }
I8KV_PV_FN(i8kv_pv_even, "")
I8KV_PV_FN(i8kv_pv_odd, ", ror #8")

/* i8kv_values2 for head_dim 8 (two value words) */
static void i8kv_values2_hd8(float *oa, float *ob, const uint32_t *wp, const int8_t *v, size_t row, int count,
                             float fa, float fb) {
    const int32_t ctl[2] = {(int32_t)row, count / 2};
    const uint32_t *pl = wp + 2 * (count / 2);
    const int8_t *vl = v + (size_t)(count - 1) * row;
    for (int w = 0; w < 2; w++)
        for (int odd = 0; odd < 2; odd++) {
            int32_t r[4];
            (odd ? i8kv_pv_odd : i8kv_pv_even)(r, wp, v + 4 * w, ctl);
            if (count & 1) {
                uint32_t x = i8kv_w(vl + 4 * w), pa = pl[0], pb = pl[1];
                x = odd ? i8kv_odd(x) : (uint32_t)__sxtb16(x);
                r[0] = __smlabb(x, pa, r[0]), r[1] = __smlatb(x, pa, r[1]);
                r[2] = __smlabb(x, pb, r[2]), r[3] = __smlatb(x, pb, r[3]);
            }
            oa[4 * w + odd] = (float)r[0] * fa, oa[4 * w + 2 + odd] = (float)r[1] * fa;
            ob[4 * w + odd] = (float)r[2] * fb, ob[4 * w + 2 + odd] = (float)r[3] * fb;
        }
}

/* slmc_i8kv_quantize (kv_write_i8.c) of one head of 8, its single operations in its order, returning the scale
 * and writing the int8 values as the sign-extended halfword pairs the scores take, (q0,q2) (q1,q3) (q4,q6)
 * (q5,q7), by PKHBT (each value is in -127..127): no bytes stored and unpacked again. */
static inline __attribute__((always_inline)) float i8kv_quantize8(uint32_t *pairs, const float *x) {
    register uint32_t p0 __asm__("r2"), p1 __asm__("r3"), p2 __asm__("r4"), p3 __asm__("r5");
    register float sc __asm__("s9");
    uint32_t t0, t1;
    /* s0-s7 the values, s8 the maximum from 0.0f (VMAXNM: kv_write_i8.c's compare for non-NaN values), s9 the
     * scale; a zero scale skips to zeros */
    __asm__ volatile("vldmia %[x], {s0-s7}\n\t"
            "vmov.f32 s8, %[z]\n\t"
            "vabs.f32 s10, s0\n\t" "vmaxnm.f32 s8, s8, s10\n\t"
            "vabs.f32 s10, s1\n\t" "vmaxnm.f32 s8, s8, s10\n\t"
            "vabs.f32 s10, s2\n\t" "vmaxnm.f32 s8, s8, s10\n\t"
            "vabs.f32 s10, s3\n\t" "vmaxnm.f32 s8, s8, s10\n\t"
            "vabs.f32 s10, s4\n\t" "vmaxnm.f32 s8, s8, s10\n\t"
            "vabs.f32 s10, s5\n\t" "vmaxnm.f32 s8, s8, s10\n\t"
            "vabs.f32 s10, s6\n\t" "vmaxnm.f32 s8, s8, s10\n\t"
            "vabs.f32 s10, s7\n\t" "vmaxnm.f32 s8, s8, s10\n\t"
            "vdiv.f32 %[sc], s8, %[c127]\n\t"
            "vcmp.f32 %[sc], #0\n\t"
            "vmrs   APSR_nzcv, fpscr\n\t"
            "bne    1f\n\t"
            "mov    %[p0], #0\n\t"
            "mov    %[p1], #0\n\t"
            "mov    %[p2], #0\n\t"
            "mov    %[p3], #0\n\t"
            "b      2f\n"
            "1:\n\t"
#define I8KV_Q1(S) "vdiv.f32 " S ", " S ", %[sc]\n\t" "vadd.f32 " S ", " S ", %[mg]\n\t" \
                   "vsub.f32 " S ", " S ", %[mg]\n\t" "vcvt.s32.f32 " S ", " S "\n\t"
            I8KV_Q1("s0") I8KV_Q1("s1") I8KV_Q1("s2") I8KV_Q1("s3")
            I8KV_Q1("s4") I8KV_Q1("s5") I8KV_Q1("s6") I8KV_Q1("s7")
#undef I8KV_Q1
            "vmov   %[p0], %[p1], s0, s1\n\t"
            "vmov   %[t0], %[t1], s2, s3\n\t"
            "pkhbt  %[p0], %[p0], %[t0], lsl #16\n\t"
            "pkhbt  %[p1], %[p1], %[t1], lsl #16\n\t"
            "vmov   %[p2], %[p3], s4, s5\n\t"
            "vmov   %[t0], %[t1], s6, s7\n\t"
            "pkhbt  %[p2], %[p2], %[t0], lsl #16\n\t"
            "pkhbt  %[p3], %[p3], %[t1], lsl #16\n"
            "2:\n\t"
            "stmia  %[pp], {%[p0], %[p1], %[p2], %[p3]}"
            : [p0] "=&r"(p0), [p1] "=&r"(p1), [p2] "=&r"(p2), [p3] "=&r"(p3), [t0] "=&r"(t0), [t1] "=&r"(t1),
              [sc] "=&t"(sc)
            : [x] "r"(x), [pp] "r"(pairs), [z] "t"(0.0f), [c127] "t"(127.0f), [mg] "t"(12582912.0f)
            : "memory", "cc", "s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s10");
    return sc;
}

/* The pair of query heads over KV head kh for token row s (see above), then p.v as i8kv_values2. */
static inline __attribute__((always_inline)) void i8kv_heads_pair(float *o0, const float *q0, const int8_t *k0,
                                                                  const int8_t *v0, float *att,
                                                                  size_t row, int kv_mul, int stride, int t0,
                                                                  int count, int qm, float sqrt_hd) {
    struct i8kv_pair P;
    P.row = (uint32_t)row;
    P.k[0] = -125.0f, P.k[1] = 0.006831980310380459f, P.k[2] = 0.05322372913360596f;
    P.k[3] = 0.23945681750774384f, P.k[4] = 0.6930635571479797f, P.k[5] = 1.0f;
    for (int j = 0; j < kv_mul; j += 2) {
        float c[2], inv[2], f[2];
        for (int h = 0; h < 2; h++)
            c[h] = (i8kv_quantize8(P.q + 4 * h, q0 + (size_t)(j + h) * 8) / sqrt_hd) * SLMC_I8KV_LOG2E;
        P.c2a = c[0], P.c2b = c[1], P.mxa = -INFINITY, P.mxb = -INFINITY;
        float *a = att + (size_t)j * stride;
        i8kv_scores2(a, k0 + (size_t)t0 * row, count, &P);
        P.suma = 0.0f;
        i8kv_softmax2(a, v0 + (size_t)t0 * row + 8, count, &P);
        float sums[2] = {P.suma, P.sumb}, wm[2] = {P.wa, P.wb};
        for (int h = 0; h < 2; h++) { /* an all-zero head: weights 0 and factor 0, outputs 0.0f */
            int live = wm[h] > 0.0f;
            inv[h] = live ? (float)qm / wm[h] : 0.0f;
            f[h] = live ? (wm[h] / (float)qm) / sums[h] : 0.0f;
        }
        /* the int16 weights, word 2k + h holding head h's (wq[t0 + 2k], wq[t0 + 2k + 1]), written over the scores
         * they come from: a step reads 4 floats (16 bytes) and writes 2 words (8 bytes) behind them, so no score is
         * overwritten before it is read, and the pair needs no scratch of its own */
        uint32_t *wd = (uint32_t *)(void *)a;
        const float *ap = a, *ae = a + 2 * (count & ~1);
        if (ap < ae) { /* per two positions: VLDM, 4 x (VMUL, VADD, VCVT), 2 paired VMOVs, 2 PKHBT, STRD: 20 */
            register float f0 __asm__("s0"), f1 __asm__("s1"), f2 __asm__("s2"), f3 __asm__("s3");
            register uint32_t r0 __asm__("r2"), r1 __asm__("r3"), r2 __asm__("r4"), r3 __asm__("r5");
            __asm__ volatile("1:\n\t"
                    "vldmia %[ap]!, {%[f0], %[f1], %[f2], %[f3]}\n\t"
                    "vmul.f32 %[f0], %[f0], %[ia]\n\t"
                    "vmul.f32 %[f1], %[f1], %[ib]\n\t"
                    "vmul.f32 %[f2], %[f2], %[ia]\n\t"
                    "vmul.f32 %[f3], %[f3], %[ib]\n\t"
                    "vadd.f32 %[f0], %[f0], %[h]\n\t"
                    "vadd.f32 %[f1], %[f1], %[h]\n\t"
                    "vadd.f32 %[f2], %[f2], %[h]\n\t"
                    "vadd.f32 %[f3], %[f3], %[h]\n\t"
                    "vcvt.s32.f32 %[f0], %[f0]\n\t"
                    "vcvt.s32.f32 %[f1], %[f1]\n\t"
                    "vcvt.s32.f32 %[f2], %[f2]\n\t"
                    "vcvt.s32.f32 %[f3], %[f3]\n\t"
                    "vmov   %[r0], %[r1], %[f0], %[f1]\n\t"
                    "vmov   %[r2], %[r3], %[f2], %[f3]\n\t"
                    "pkhbt  %[r0], %[r0], %[r2], lsl #16\n\t"
                    "pkhbt  %[r1], %[r1], %[r3], lsl #16\n\t"
                    "strd   %[r0], %[r1], [%[wd]], #8\n\t"
                    "cmp    %[ap], %[ae]\n\t"
                    "bne    1b"
                    : [f0] "=&t"(f0), [f1] "=&t"(f1), [f2] "=&t"(f2), [f3] "=&t"(f3), [r0] "=&r"(r0), [r1] "=&r"(r1),
                      [r2] "=&r"(r2), [r3] "=&r"(r3), [ap] "+r"(ap), [wd] "+r"(wd)
                    : [ae] "r"(ae), [ia] "t"(inv[0]), [ib] "t"(inv[1]), [h] "t"(0.5f)
                    : "memory", "cc");
        }
        if (count & 1) {
            wd[0] = (uint32_t)(int32_t)(ap[0] * inv[0] + 0.5f);
            wd[1] = (uint32_t)(int32_t)(ap[1] * inv[1] + 0.5f);
        }
        float *oh = o0 + (size_t)j * 8;
        i8kv_values2_hd8(oh, oh + 8, (const uint32_t *)(void *)a, v0 + (size_t)t0 * row, row, count, f[0], f[1]);
    }
}

/* token row s of attention_i8kv_dsp.c (o and q at the row's first head): KV heads kh0..kh1-1, each with its pair of
 * query heads */
void slmc_i8kv_dsp_pairs(float *o, const float *q, const int8_t *kc, const int8_t *vc, float *att,
                         int n_kv_heads, int stride, int t0, int count, int qm, float sqrt_hd, int kh0, int kh1) {
    size_t rec = 8 + SLMC_I8KV_SCALE, row = (size_t)n_kv_heads * rec;
    for (int kh = kh0; kh < kh1; kh++)
        i8kv_heads_pair(o + (size_t)kh * 16, q + (size_t)kh * 16, kc + (size_t)kh * rec, vc + (size_t)kh * rec, att, row,
                        2, stride, t0, count, qm, sqrt_hd);
}
#endif
