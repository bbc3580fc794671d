#include "slmc_kernels.h"
#include <arm_acle.h>

/* attention_i8kv.c for the Cortex-M33 (Armv8-M DSP extension), bit-identical to it: its integer sums are
 * exact in any order, and its float steps are attention_i8kv.c's single operations in the same order
 * (slmc_i8kv_exp2 and slmc_i8kv_softcap are slmc_kernels.h's, shared). head_dim is a multiple of 4, so a record is
 * whole words and its binary16 scale; a record starts at an even byte (hd + 2 bytes each), so its words are read by
 * single LDRs, which the M33 does unaligned (never LDRD/LDM), and its scale by LDRH and VCVTB (exact):
 *   q.k  the query head quantized once and kept as sign-extended halfword pairs (q0,q2), (q1,q3), what
 *        SXTB16 and SXTB16 ROR #8 make of a key word: two SMLADs add a word's 4 products; the scores'
 *        maximum is kept on the way;
 *   softmax  VMAXNM for the maxima (attention_i8kv.c's compare, for every non-NaN value), and 2^n applied by
 *        adding n to the exponent of p (exact: p * 2^n is normal, as attention_i8kv.c's product is);
 *   p.v  the integer weights packed as int16 pairs of positions (scratch after attention_i8kv.c's); per value
 *        word and pair of positions SXTB16 unpacks both words, PKHBT/PKHTB pair each output's two values and
 *        one SMLAD per output adds both products; two query heads that share the KV head go together, so each
 *        value pair is made once for both (i8kv_values2: 8 MACs in 15 instructions with the loads and the
 *        loop), a head left over alone (i8kv_values).
 * head_dim 8 with two query heads per KV head and no soft-cap (stories260K) goes to attention_i8kv_dsp_pair.c:
 * the same operations with the two heads' scores and softmax in one asm pass each. */
void slmc_i8kv_quantize(int8_t *q, float *scale, const float *x, int hd);


#if defined(__GNUC__)
#define I8KV_INLINE static inline __attribute__((always_inline))
#else
#define I8KV_INLINE static inline
#endif

/* (lo of a, lo of b) and (hi of a, hi of b) as halfword pairs: PKHBT, PKHTB (not in gcc 12's arm_acle.h) */
static inline uint32_t i8kv_lo(uint32_t a, uint32_t b) {
    uint32_t r;
    __asm__("pkhbt %0, %1, %2, lsl #16" : "=r"(r) : "r"(a), "r"(b));
    return r;
}

static inline uint32_t i8kv_hi(uint32_t a, uint32_t b) {
    uint32_t r;
    __asm__("pkhtb %0, %2, %1, asr #16" : "=r"(r) : "r"(a), "r"(b));
    return r;
}

/* record words (2-byte aligned: single LDRs, unaligned where a record starts at 2 mod 4) and binary16 scales */
typedef uint32_t __attribute__((may_alias, aligned(2))) i8kv_u32;
static inline uint32_t i8kv_w(const int8_t *p) { return *(const i8kv_u32 *)__builtin_assume_aligned(p, 2); }
static inline float i8kv_f(const int8_t *p) {
#if defined(__ARM_FP) && defined(__GNUC__)
    uint16_t h;
    float f;
    memcpy(&h, p, 2);
    __asm__("vmov %0, %1\n\tvcvtb.f32.f16 %0, %0" : "=t"(f) : "r"((uint32_t)h));
    return f;
#else
    return slmc_i8kv_unhalf(p);
#endif
}

/* SXTB16 of x rotated right by 8 in one instruction (gcc 12 does not fold the rotation) */
static inline uint32_t i8kv_odd(uint32_t x) {
    uint32_t r;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(x));
    return r;
}

/* One query head's scores (units of log2(e)) over positions t0..len-1; returns their maximum. `words`
 * (head_dim / 4) is a constant at the calls for head_dim 8 and 16, so the word loop unrolls. */
I8KV_INLINE float i8kv_scores(float *att, const uint32_t *qp, const int8_t *k, size_t row, int hd, int words,
                              float c, float c2, float softcap, int t0, int len) {
    float mx = -INFINITY;
    k += (size_t)t0 * row;
    if (softcap > 0.0f) {
        for (int t = t0; t < len; t++, k += row) {
            int32_t dot = 0;
            for (int w = 0; w < words; w++) {
                uint32_t kw = i8kv_w(k + 4 * w);
                dot = __smlad(qp[2 * w], __sxtb16(kw), dot);
                dot = __smlad(qp[2 * w + 1], i8kv_odd(kw), dot);
            }
            float score = slmc_i8kv_softcap((float)dot * (i8kv_f(k + hd) * c), softcap) * SLMC_I8KV_LOG2E;
            att[t] = score;
            mx = fmaxf(mx, score); /* VMAXNM; attention_i8kv.c's compare for every non-NaN score */
        }
        return mx;
    }
    for (int t = t0; t < len; t++, k += row) {
        int32_t dot = 0;
#pragma GCC unroll 4
        for (int w = 0; w < words; w++) {
            uint32_t kw = i8kv_w(k + 4 * w);
            dot = __smlad(qp[2 * w], __sxtb16(kw), dot);
            dot = __smlad(qp[2 * w + 1], i8kv_odd(kw), dot);
        }
        float score = (float)dot * (i8kv_f(k + hd) * c2);
        att[t] = score;
        mx = fmaxf(mx, score);
    }
    return mx;
}

/* out[i] = (float)(sum over t of wq[t] * v[t][i]) * f, wq as int16 pairs (wq[t], wq[t+1]) from t0: per value
 * word and pair of positions, SXTB16 unpacks both words, PKHBT/PKHTB pair each output's two values, and one SMLAD
 * per output adds both products; an odd last position by SMLABB/SMLATB. */
__attribute__((noinline)) static void i8kv_values(float *out, const uint32_t *wp, const int8_t *v, size_t row,
                                                  int words, int count, float f) {
    for (int w = 0; w < words; w++) {
        int32_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        const int8_t *vw = v + 4 * w;
        const uint32_t *pp = wp, *pe = wp + count / 2;
        size_t row2 = 2 * row;
        for (; pp < pe; vw += row2) {
            uint32_t pair = *pp++, x = i8kv_w(vw), y = i8kv_w(vw + row);
            uint32_t xe = __sxtb16(x), xo = i8kv_odd(x), ye = __sxtb16(y), yo = i8kv_odd(y);
            s0 = __smlad(i8kv_lo(xe, ye), pair, s0);
            s2 = __smlad(i8kv_hi(xe, ye), pair, s2);
            s1 = __smlad(i8kv_lo(xo, yo), pair, s1);
            s3 = __smlad(i8kv_hi(xo, yo), pair, s3);
        }
        if (count & 1) {
            uint32_t last = *pp, x = i8kv_w(vw), xe = __sxtb16(x), xo = i8kv_odd(x);
            s0 = __smlabb(xe, last, s0), s2 = __smlatb(xe, last, s2), s1 = __smlabb(xo, last, s1);
            s3 = __smlatb(xo, last, s3);
        }
        out[4 * w] = (float)s0 * f, out[4 * w + 1] = (float)s1 * f, out[4 * w + 2] = (float)s2 * f;
        out[4 * w + 3] = (float)s3 * f;
    }
}

/* Two query heads that share a KV head, over the same values: their int16 weight pairs interleaved, word 2k + h
 * holding head h's (wq[t0 + 2k], wq[t0 + 2k + 1]) (an odd last position paired with 0). One output column pair
 * (the even or the odd elements of a value word) of both heads per pass: each value word pair is unpacked and
 * paired once for both heads, then 4 SMLADs: 8 MACs in 14 instructions with the loads and the loop. */
I8KV_INLINE void i8kv_pass2(int32_t *r, const uint32_t *wp, const int8_t *vw, size_t row, int count, const int odd) {
    int32_t a0 = 0, a2 = 0, b0 = 0, b2 = 0;
    const uint32_t *pp = wp, *pe = wp + 2 * (count / 2);
    for (; pp < pe; pp += 2, vw += 2 * row) {
        uint32_t x = i8kv_w(vw), y = i8kv_w(vw + row);
        x = odd ? i8kv_odd(x) : __sxtb16(x);
        y = odd ? i8kv_odd(y) : __sxtb16(y);
        uint32_t lo = i8kv_lo(x, y), hi = i8kv_hi(x, y), pa = pp[0], pb = pp[1];
        a0 = __smlad(lo, pa, a0), a2 = __smlad(hi, pa, a2), b0 = __smlad(lo, pb, b0), b2 = __smlad(hi, pb, b2);
    }
    if (count & 1) {
        uint32_t x = i8kv_w(vw), pa = pp[0], pb = pp[1];
        x = odd ? i8kv_odd(x) : __sxtb16(x);
        a0 = __smlabb(x, pa, a0), a2 = __smlatb(x, pa, a2), b0 = __smlabb(x, pb, b0), b2 = __smlatb(x, pb, b2);
    }
    r[0] = a0, r[1] = a2, r[2] = b0, r[3] = b2;
}

__attribute__((noinline)) static void i8kv_values2(float *oa, float *ob, const uint32_t *wp, const int8_t *v,
                                                   size_t row, int words, int count, float fa, float fb) {
    for (int w = 0; w < words; w++) {
        int32_t r[4];
        for (int odd = 0; odd < 2; odd++) {
            if (odd) i8kv_pass2(r, wp, v + 4 * w, row, count, 1);
            else i8kv_pass2(r, wp, v + 4 * w, row, count, 0);
            oa[4 * w + odd] = (float)r[0] * fa, oa[4 * w + 2 + odd] = (float)r[1] * fa;
            ob[4 * w + odd] = (float)r[2] * fb, ob[4 * w + 2 + odd] = (float)r[3] * fb;
        }
    }
}


/* head_dim 8, two query heads per KV head, no soft-cap: attention_i8kv_dsp_pair.c (asm scores and softmax of both
 * heads in one pass each; built where this guard holds) */
#if defined(__ARM_FEATURE_DSP) && defined(__thumb2__) && defined(__ARM_FP) && defined(__GNUC__)
#define I8KV_PAIRS 1
void slmc_i8kv_dsp_pairs(float *o, const float *q, const int8_t *kc, const int8_t *vc, float *att, int n_kv_heads,
                         int stride, int t0, int count, int qm, float sqrt_hd, int kh0, int kh1);
#endif

/* KV heads kh0..kh1-1 (and their query heads) of every token row: each KV head's outputs depend on its own
 * query heads and cache columns only, so a multi-core build (parallel_attention_i8kv_dsp.c) gives each core
 * a range of them with its own scratch, and the bits are the serial kernel's. */
void slmc_attention_i8kv_dsp_heads(float *out, const float *q, const int8_t *kc, const int8_t *vc, float *scratch, int n,
                                   int n_heads, int n_kv_heads, int hd, int pos, int window, float softcap, int kh0,
                                   int kh1) {
    int kv_mul = n_heads / n_kv_heads, stride = pos + n, rec = hd + SLMC_I8KV_SCALE, words = hd / 4;
    size_t row = (size_t)n_kv_heads * rec;
    float *att = scratch;
    int8_t *qq = (int8_t *)(void *)(att + (size_t)kv_mul * stride);
    /* after the query bytes: two floats per head, then (past attention_i8kv.c's scratch) the int16 weights */
    float *fac = (float *)(void *)(qq + (((size_t)kv_mul * hd + 3) & ~(size_t)3)); /* per head: 1 / weight step, factor */
    uint32_t *wq = (uint32_t *)(void *)(fac + 2 * (size_t)kv_mul + (size_t)hd);
    float sqrt_hd = sqrtf((float)hd);
    for (int s = 0; s < n; s++) {
        int len = pos + s + 1, t0 = window > 0 && len > window ? len - window : 0, count = len - t0;
        int qm = count <= 516 ? 32767 : (int)(2147483647 / (127 * (int64_t)count));
#ifdef I8KV_PAIRS
        if (hd == 8 && kv_mul == 2 && !(softcap > 0.0f)) { /* every KV head of token row s */
            slmc_i8kv_dsp_pairs(out + (size_t)s * n_heads * hd, q + (size_t)s * n_heads * hd, kc, vc, att,
                                n_kv_heads, stride, t0, count, qm, sqrt_hd, kh0, kh1);
            continue;
        }
#endif
        for (int kh = kh0; kh < kh1; kh++) {
            const float *q0 = q + (size_t)s * n_heads * hd + (size_t)kh * kv_mul * hd;
            float *o0 = out + (size_t)s * n_heads * hd + (size_t)kh * kv_mul * hd;
            const int8_t *k0 = kc + (size_t)kh * rec, *v0 = vc + (size_t)kh * rec;
            for (int j = 0; j < kv_mul; j++) {
                uint32_t pairs[2 * 64];
                float sq, *a = att + (size_t)j * stride;
                slmc_i8kv_quantize(qq, &sq, q0 + (size_t)j * hd, hd);
                float c = sq / sqrt_hd, c2 = c * SLMC_I8KV_LOG2E, mx;
                for (int w = 0; w < words && w < 64; w++) {
                    uint32_t x = i8kv_w(qq + 4 * w);
                    pairs[2 * w] = __sxtb16(x), pairs[2 * w + 1] = i8kv_odd(x);
                }
                if (words == 2) mx = i8kv_scores(a, pairs, k0, row, 8, 2, c, c2, softcap, t0, len);
                else if (words == 4) mx = i8kv_scores(a, pairs, k0, row, 16, 4, c, c2, softcap, t0, len);
                else mx = i8kv_scores(a, pairs, k0, row, hd, words, c, c2, softcap, t0, len);
                float sum = 0.0f, wmax = 0.0f;
                const int8_t *sv = v0 + (size_t)t0 * row + hd;
                for (int t = t0; t < len; t++, sv += row) {
                    float e = slmc_i8kv_exp2(a[t] - mx), w;
                    sum += e;
                    w = e * i8kv_f(sv);
                    a[t] = w;
                    wmax = fmaxf(wmax, w);
                }
                /* an all-zero head: weights 0 and factor 0, so its outputs are 0.0f as attention_i8kv.c writes them */
                int live = wmax > 0.0f;
                fac[2 * j] = live ? (float)qm / wmax : 0.0f;
                fac[2 * j + 1] = live ? (wmax / (float)qm) / sum : 0.0f;
            }
            for (int j = 0; j < kv_mul; j += 2) {
                int two = j + 1 < kv_mul, m = two ? 2 : 1;
                for (int h = 0; h < m; h++) { /* weight pairs interleaved by head (a single head: word k) */
                    const float *a = att + (size_t)(j + h) * stride + t0;
                    float inv = fac[2 * (j + h)];
                    uint32_t *wd = wq + h;
                    int i = 0;
                    for (; i + 1 < count; i += 2, wd += m) /* 0 <= weight <= 32767: PKHBT packs the two */
                        *wd = i8kv_lo((uint32_t)(int32_t)(a[i] * inv + 0.5f), (uint32_t)(int32_t)(a[i + 1] * inv + 0.5f));
                    if (i < count) *wd = (uint32_t)(int32_t)(a[i] * inv + 0.5f);
                }
                const uint32_t *wp = wq;
                const int8_t *vt = v0 + (size_t)t0 * row;
                float *oh = o0 + (size_t)j * hd;
                if (two) i8kv_values2(oh, oh + hd, wp, vt, row, words, count, fac[2 * j + 1], fac[2 * j + 3]);
                else i8kv_values(oh, wp, vt, row, words, count, fac[2 * j + 1]);
            }
        }
    }
}

void slmc_attention_i8kv_dsp(float *out, const float *q, const int8_t *kc, const int8_t *vc, float *scratch, int n,
                             int n_heads, int n_kv_heads, int hd, int pos, int window, float softcap) {
    slmc_attention_i8kv_dsp_heads(out, q, kc, vc, scratch, n, n_heads, n_kv_heads, hd, pos, window, softcap, 0,
                                  n_kv_heads);
}
