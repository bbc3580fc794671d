#include "slmc_kernels.h"
#include <arm_acle.h>

/* linear_q8_dsp.c for the n rows of a batched step (slmc compile --batch), bit-identical to it row by
 * row: the same exact int32 group sums (integer adds in any order give the same sum), rescaled as
 * v += ((float)a * ws) * xs and accumulated in group order per row.
 *
 * linear_q8_dsp.c loads and unpacks (SXTB16) every weight word once per token row. Here two token rows
 * share it: the activations of a pair of rows are unpacked once per call into scratch as
 * [e0, o0, e1, o1] per 4 columns (2 * k bytes per row; an odd last row is paired with itself), and one
 * step over 4 columns of 2 weight rows and 2 token rows is LDRD, LDRD (the pair's activations), LDRD (a
 * word of each weight row), 4 SXTB16 and 8 SMLAD: 16 MACs in 15 instructions (about 18 cycles) instead
 * of 16 MACs in 18 instructions (23 cycles). 2 x 2 is what 13 registers hold (4 activation words, 2
 * weight words, one unpacked half, 4 sums, 2 pointers). The pairs are the innermost loop but one, so a
 * block of weight rows is read from flash once per call and reread from the XIP cache for the other
 * pairs. Weights in the "rows4" blob order (quant/q8.py pack_rows4): rows in blocks of four,
 * word-interleaved ([block][k/4][row][4 bytes]), scales [block][group][row]; rows after the last full
 * block row-major. Groups are multiples of 4. */

#define Q8P_LOADS "ldrd   %[x0e], %[x0o], [%[xp]], #8\n\tldrd   %[x1e], %[x1o], [%[xp]], #8\n\t" \
                  "ldrd   %[w0], %[w1], [%[pw]], #16\n\t"
#define Q8P_W(W, A0, A1, OP) "sxtb16 %[t], %[" W "], ror #8\n\tsxtb16 %[" W "], %[" W "]\n\t" \
                             OP(A0, "x0e", W) "smlad  %[" A0 "], %[x0o], %[t], %[" A0 "]\n\t"   \
                             OP(A1, "x1e", W) "smlad  %[" A1 "], %[x1o], %[t], %[" A1 "]\n\t"
#define Q8P_MUL(A, X, W) "smuad  %[" A "], %[" X "], %[" W "]\n\t"
#define Q8P_MAC(A, X, W) "smlad  %[" A "], %[" X "], %[" W "], %[" A "]\n\t"
#define Q8P_FIRST Q8P_LOADS Q8P_W("w0", "a00", "a10", Q8P_MUL) Q8P_W("w1", "a01", "a11", Q8P_MUL)
#define Q8P_NEXT Q8P_LOADS Q8P_W("w0", "a00", "a10", Q8P_MAC) Q8P_W("w1", "a01", "a11", Q8P_MAC)
#define Q8P_NEXT3 Q8P_NEXT Q8P_NEXT Q8P_NEXT
#define Q8P_NEXT7 Q8P_NEXT3 Q8P_NEXT3 Q8P_NEXT
#define Q8P_NEXT15 Q8P_NEXT7 Q8P_NEXT7 Q8P_NEXT
#define Q8P_OUTS(A) [x0e] "=&r"(x0e), [x0o] "=&r"(x0o), [x1e] "=&r"(x1e), [x1o] "=&r"(x1o), [w0] "=&r"(w0), \
                    [w1] "=&r"(w1), [t] "=&r"(t), [a00] A(a00), [a01] A(a01), [a10] A(a10), [a11] A(a11),   \
                    [pw] "+r"(pw), [xp] "+r"(xp)

/* Two weight rows (from pw: the first row's word of the first step, row stride 4 bytes, step 16; their scales
 * from sw, [group][row] with row stride 1 and group stride 4) times every pair of token rows (xw: each pair's
 * unpacked activations), all groups; out and b are at the first of the two output columns. The pairs loop
 * here, inside one call, so that the two weight rows (2 * k bytes) stay in the XIP cache for all of them. */
static inline __attribute__((always_inline)) void q8_pairs_rows2(float *out, const uint32_t *xw, const float *xs,
                                                                 const int8_t *pw0, const float *sw0, const float *b,
                                                                 int n, int k, int m, int ng, const int group,
                                                                 int group_rt) {
    const float b0 = b ? b[0] : 0.0f, b1 = b ? b[1] : 0.0f;
    for (int s = 0; s < n; s += 2) {
        const int two = s + 1 < n;
        const uint32_t *xp = xw + (size_t)(s / 2) * k;
        const float *xs0 = xs + (size_t)s * ng, *xs1 = two ? xs0 + ng : xs0, *sw = sw0;
        const int8_t *pw = pw0;
        float v00 = 0.0f, v01 = 0.0f, v10 = 0.0f, v11 = 0.0f;
        for (int g = 0; g < ng; g++, sw += 4) {
            uint32_t x0e, x0o, x1e, x1o, w0, w1, t;
            int32_t a00, a01, a10, a11;
            switch (group) { /* the asm reads the scratch written by the caller and the weights: "memory" */
            case 64: __asm__(Q8P_FIRST Q8P_NEXT15 : Q8P_OUTS("=&r") : : "memory"); break;
            case 32: __asm__(Q8P_FIRST Q8P_NEXT7 : Q8P_OUTS("=&r") : : "memory"); break;
            case 16: __asm__(Q8P_FIRST Q8P_NEXT3 : Q8P_OUTS("=&r") : : "memory"); break;
            default: /* a group known only at run time, a multiple of 4 */
                a00 = a01 = a10 = a11 = 0;
                for (int j = 0; j < group_rt / 4; j++) __asm__(Q8P_NEXT : Q8P_OUTS("+r") : : "memory");
            }
            v00 += ((float)a00 * sw[0]) * xs0[g];
            v01 += ((float)a01 * sw[1]) * xs0[g];
            v10 += ((float)a10 * sw[0]) * xs1[g];
            v11 += ((float)a11 * sw[1]) * xs1[g];
        }
        float *o = out + (size_t)s * m;
        o[0] = v00 + b0, o[1] = v01 + b1;
        if (two) o[m] = v10 + b0, o[m + 1] = v11 + b1;
    }
}

#define Q8P_FOR(G)                                                                                                \
    static __attribute__((noinline)) void q8_pairs_rows2_##G(float *out, const uint32_t *xw, const float *xs,       \
                                                             const int8_t *pw, const float *sw, const float *b, int n, \
                                                             int k, int m, int ng, int group) {                   \
        q8_pairs_rows2(out, xw, xs, pw, sw, b, n, k, m, ng, G, group);                                            \
    }
Q8P_FOR(64)
Q8P_FOR(32)
Q8P_FOR(16)
static __attribute__((noinline)) void q8_pairs_rows2_any(float *out, const uint32_t *xw, const float *xs,
                                                         const int8_t *pw, const float *sw, const float *b, int n,
                                                         int k, int m, int ng, int group) {
    q8_pairs_rows2(out, xw, xs, pw, sw, b, n, k, m, ng, 0, group);
}

void slmc_linear_q8_dsp(float *out, const int8_t *xq, const float *xs, const int8_t *wq, const float *ws,
                        const float *b, uint32_t *xw, int n, int k, int m, int group);

void slmc_linear_q8_dsp_rows(float *out, const int8_t *xq, const float *xs, const int8_t *wq, const float *ws,
                             const float *b, uint32_t *xw, int n, int k, int m, int group) {
    /* Measured (Unicorn, the cycle model of targets/cycles.py, n = 4): k = 768 or 288 with groups of 32, 1.49
     * and 1.55 cycles per MAC here against 1.72 and 1.74 in linear_q8_dsp.c; k = 128, groups of 64: 1.56
     * against 1.69; but k = 64: 1.81 against 1.79, and groups of 16: 2.27 against 2.18. Short rows and small
     * groups pay the float rescale per group and output (which sharing cannot cut) and this kernel's per-pair
     * set-up more often than they save unpacking, and linear_q8_dsp.c's rescale, in asm, is the faster one:
     * they (and one row) go to it; its scratch (2 * n * k bytes) fits in this kernel's. */
    if (group < 32 || k < 128 || n == 1) {
        slmc_linear_q8_dsp(out, xq, xs, wq, ws, b, xw, n, k, m, group);
        return;
    }
    const int ng = k / group, nb = m / 4, pairs = (n + 1) / 2;
    for (int p = 0; p < pairs; p++) { /* unpack each pair of token rows: [e0, o0, e1, o1] per 4 columns */
        const int8_t *r0 = xq + (size_t)(2 * p) * k, *r1 = 2 * p + 1 < n ? r0 + k : r0;
        uint32_t *d = xw + (size_t)p * k;
        for (int j = 0; j < k; j += 4, d += 4) {
            uint32_t u0, u1;
            memcpy(&u0, r0 + j, 4);
            memcpy(&u1, r1 + j, 4);
            d[0] = __sxtb16(u0), d[1] = __sxtb16((u0 >> 8) | (u0 << 24));
            d[2] = __sxtb16(u1), d[3] = __sxtb16((u1 >> 8) | (u1 << 24));
        }
    }
    for (int blk = 0; blk < nb; blk++)
        for (int half = 0; half < 2; half++) {
            const int8_t *pw = wq + (size_t)blk * 4 * k + 8 * half;
            const float *sw = ws + (size_t)blk * 4 * ng + 2 * half, *bb = b ? b + 4 * blk + 2 * half : 0;
            float *o = out + 4 * blk + 2 * half;
            switch (group) {
            case 64: q8_pairs_rows2_64(o, xw, xs, pw, sw, bb, n, k, m, ng, group); break;
            case 32: q8_pairs_rows2_32(o, xw, xs, pw, sw, bb, n, k, m, ng, group); break;
            case 16: q8_pairs_rows2_16(o, xw, xs, pw, sw, bb, n, k, m, ng, group); break;
            default: q8_pairs_rows2_any(o, xw, xs, pw, sw, bb, n, k, m, ng, group); break;
            }
        }
    for (int i = 4 * nb; i < m; i++) { /* the rows after the last full block, row-major */
        const float *s0 = ws + (size_t)i * ng;
        for (int s = 0; s < n; s++) {
            const int8_t *p0 = wq + (size_t)i * k;
            const uint32_t *xp = xw + (size_t)(s / 2) * k + 2 * (s % 2);
            const float *xsr = xs + (size_t)s * ng;
            float v0 = 0.0f;
            for (int g = 0; g < ng; g++) {
                int32_t a0 = 0;
                for (int j = 0; j < group / 4; j++, p0 += 4, xp += 4) {
                    uint32_t w;
                    memcpy(&w, p0, 4);
                    a0 = (int32_t)__smlad(xp[0], __sxtb16(w), (uint32_t)a0);
                    a0 = (int32_t)__smlad(xp[1], __sxtb16((w >> 8) | (w << 24)), (uint32_t)a0);
                }
                v0 += ((float)a0) * s0[g] * xsr[g];
            }
            out[(size_t)s * m + i] = v0 + (b ? b[i] : 0.0f);
        }
    }
}
