#include "slmc_kernels.h"
#include <arm_acle.h>

/* conv_integer.c for Cortex-M33 (Armv8-M DSP extension), int8 weights (the registry sends uint8 weights to
 * the portable kernel): every output is the same exact int32 sum of (x - x_zp) * (w - w_zp[m]) (integer adds in
 * any order give the same sum), two products per SMLAD. The activations minus their zero point are widened
 * once per call into scratch as int16, where the zero padding is exact: a padded position's (x - x_zp) is 0.
 * - a pointwise conv of one group (1x1, stride 1, no pads) is a matrix product: 64 pixels at a time, each
 *   pixel's channels widened as halfword pairs (x0,x2),(x1,x3) per 4 channels (what SXTB16 and SXTB16 ROR #8
 *   make of a weight word, as linear_i8_dsp.c does), four output channels per pass from a packed copy of their
 *   weights (one pointer), the weight zero points off at the end: sum (x - zx) w - zw sum (x - zx);
 * - any other conv (KxK, strides, pads, dilations, groups, depthwise) widens the padded input volume of one
 *   group, builds each output channel's (w - zw) as int16 pairs along the kernel's rows (one pair per tap when
 *   the columns are dilated), and sums an output position as one SMLAD per pair of taps over unaligned word
 *   loads of the widened rows (Armv8-M allows them), 3x3 kernels of one input channel (depthwise) with the six
 *   pairs in registers. Scratch: kernels/onnx_quant.py `_conv_dsp_scratch` (the same layout). */

#define PW_CHUNK 64

static inline uint32_t ld32(const void *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

static inline int32_t mac4(int32_t acc, uint32_t e, uint32_t o, uint32_t w) {
    acc = (int32_t)__smlad(e, __sxtb16(w), (uint32_t)acc);
    return (int32_t)__smlad(o, __sxtb16((w >> 8) | (w << 24)), (uint32_t)acc);
}

static inline int32_t wzp(const void *wz, int nwz, int32_t mi) {
    return wz ? (int32_t)((const int8_t *)wz)[nwz > 1 ? mi : 0] : 0;
}

/* acc += the 4 products of a weight word w (4 int8) with the widened pairs xe = (x0,x2), xo = (x1,x3); asm
 * because gcc 12 does not fold the ROR into SXTB16 */
#define MAC4(A, W, XE, XO)                                                                                       \
    do {                                                                                                         \
        uint32_t t_;                                                                                             \
        __asm__("sxtb16 %[t], %[w], ror #8\n\tsxtb16 %[w], %[w]\n\tsmlad %[a], %[xe], %[w], %[a]\n\t"          \
                "smlad %[a], %[xo], %[t], %[a]"                                                                  \
                : [a] "+r"(A), [w] "+r"(W), [t] "=&r"(t_) : [xe] "r"(XE), [xo] "r"(XO));                       \
    } while (0)

#define PW_ROW(W, A)                                                                                             \
    "sxtb16 %[t], %[" W "], ror #8\n\tsxtb16 %[" W "], %[" W "]\n\tsmlad  %[" A "], %[xe], %[" W "], %[" A "]\n\t"    \
    "smlad  %[" A "], %[xo], %[t], %[" A "]\n\t"

/* four output channels (their weight words packed [c4 / 4][4]) over np widened pixels; nb of them stored; FULL: four
 * channels and no weight zero point (the common case: its epilogue is four stores) */
static inline __attribute__((always_inline)) void pw4_body(int32_t *y, size_t plane, const uint32_t *xw, int32_t c2,
                                                            const uint32_t *pk, size_t np, int32_t nb, const int32_t *zw,
                                                            const int32_t *sum, const int full) {
    const uint32_t *pend = pk + 2 * c2;
    for (size_t i = 0; i < np; i++, y++) {
        const uint32_t *xp = xw + i * c2, *pw = pk;
        uint32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
        /* per 4 channels: LDRD (the pixel's pairs), LDM (a word of each channel), 8 SXTB16, 8 SMLAD; asm because
         * gcc 12 neither folds the ROR into SXTB16 nor keeps this many values out of the stack; LDM loads registers
         * in ascending order, hence the four weight registers named explicitly */
        register uint32_t w0 __asm__("r2"), w1 __asm__("r3"), w2 __asm__("r4"), w3 __asm__("r5");
        uint32_t xe, xo, t;
        __asm__("1:\n\t"
                "ldrd   %[xe], %[xo], [%[xp]], #8\n\t"
                "ldmia  %[pw]!, {%[w0], %[w1], %[w2], %[w3]}\n\t"
                PW_ROW("w0", "a0") PW_ROW("w1", "a1") PW_ROW("w2", "a2") PW_ROW("w3", "a3")
                "cmp    %[pw], %[pend]\n\t"
                "bne    1b"
                : [xe] "=&r"(xe), [xo] "=&r"(xo), [t] "=&r"(t), [w0] "=&r"(w0), [w1] "=&r"(w1), [w2] "=&r"(w2),
                  [w3] "=&r"(w3), [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [pw] "+r"(pw), [xp] "+r"(xp)
                : [pend] "r"(pend)
                : "cc", "memory");
        if (full) {
            y[0] = (int32_t)a0, y[plane] = (int32_t)a1, y[2 * plane] = (int32_t)a2, y[3 * plane] = (int32_t)a3;
            continue;
        }
        int32_t si = sum ? sum[i] : 0;
        y[0] = (int32_t)(a0 - (uint32_t)(zw[0] * si));
        if (nb > 1) y[plane] = (int32_t)(a1 - (uint32_t)(zw[1] * si));
        if (nb > 2) y[2 * plane] = (int32_t)(a2 - (uint32_t)(zw[2] * si));
        if (nb > 3) y[3 * plane] = (int32_t)(a3 - (uint32_t)(zw[3] * si));
    }
}

static __attribute__((noinline)) void pw4(int32_t *y, size_t plane, const uint32_t *xw, int32_t c2, const uint32_t *pk,
                                          size_t np, int32_t nb, const int32_t *zw, const int32_t *sum) {
    if (nb == 4 && !sum) pw4_body(y, plane, xw, c2, pk, np, nb, zw, sum, 1);
    else pw4_body(y, plane, xw, c2, pk, np, nb, zw, sum, 0);
}

/* raw bytes of x; int8 data with its top bit flipped reads as uint8 x + 128, so (x - zx) is one SSUB16 */
static void pointwise(int32_t *y, const uint8_t *x, uint32_t flip, int32_t zx, const int8_t *w, const void *wz,
                      int nwz, int32_t c, int32_t m, size_t plane, void *scratch) {
    int32_t c4 = (c + 3) & ~3, c2 = c4 / 2;
    uint32_t *xw = (uint32_t *)scratch;                   /* [PW_CHUNK][c4 / 2] */
    uint32_t *pk = xw + (size_t)PW_CHUNK * c2;            /* [c4 / 4][4 rows] packed weight words */
    int32_t *sum = (int32_t *)(pk + c4);                  /* [PW_CHUNK] sum of (x - zx) per pixel */
    uint32_t zz = (uint32_t)(zx & 0xffff) * 0x10001u;
    int any_wz = 0;
    for (int32_t mi = 0; mi < m && wz; mi++) any_wz |= wzp(wz, nwz, mi) != 0;
    for (size_t p0 = 0; p0 < plane; p0 += PW_CHUNK) {
        size_t np = plane - p0 < PW_CHUNK ? plane - p0 : PW_CHUNK;
        for (int32_t ci = 0; ci < c4; ci += 4) {
            const uint8_t *x0 = x + (size_t)ci * plane + p0;
            uint32_t *d = xw + ci / 2;
            if (ci + 4 <= c) {
                for (size_t i = 0; i < np; i++, d += c2) {
                    uint32_t e = ((uint32_t)x0[i] | (uint32_t)x0[i + 2 * plane] << 16) ^ flip;
                    uint32_t o = ((uint32_t)x0[i + plane] | (uint32_t)x0[i + 3 * plane] << 16) ^ flip;
                    d[0] = __ssub16(e, zz);
                    d[1] = __ssub16(o, zz);
                }
            } else { /* the last channels, zero-filled to 4 */
                for (size_t i = 0; i < np; i++, d += c2) {
                    int32_t v[4];
                    for (int32_t j = 0; j < 4; j++)
                        v[j] = ci + j < c ? (int32_t)((x0[i + (size_t)j * plane] ^ (flip & 0xff))) - zx : 0;
                    d[0] = (uint16_t)v[0] | (uint32_t)(uint16_t)v[2] << 16;
                    d[1] = (uint16_t)v[1] | (uint32_t)(uint16_t)v[3] << 16;
                }
            }
        }
        if (any_wz)
            for (size_t i = 0; i < np; i++) {
                uint32_t s = 0;
                for (int32_t k = 0; k < c2; k++) s = __smlad(xw[i * c2 + k], 0x10001u, s);
                sum[i] = (int32_t)s;
            }
        for (int32_t mi = 0; mi < m; mi += 4) {
            int32_t nb = m - mi < 4 ? m - mi : 4, zw[4] = {0, 0, 0, 0};
            for (int32_t r = 0; r < nb; r++) zw[r] = wzp(wz, nwz, mi + r);
            for (int32_t k = 0; k < c4; k += 4)
                for (int32_t r = 0; r < 4; r++) {
                    const int8_t *src = w + (size_t)(mi + r) * c + k;
                    uint32_t v = 0;
                    if (r < nb && k + 4 <= c) v = ld32(src);
                    else if (r < nb)
                        for (int32_t j = 3; j >= 0; j--) v = v << 8 | (k + j < c ? (uint8_t)src[j] : 0);
                    pk[k + r] = v;
                }
            pw4(y + (size_t)mi * plane + p0, plane, xw, c2, pk, np, nb, zw, any_wz ? sum : NULL);
        }
    }
}

/* a 3x3 kernel over one widened plane: the six weight pairs in registers, three row pointers, the stride a
 * constant (one function per stride), so the loop is 6 loads, 6 SMLADs, a store and 3 pointer adds per output */
#define SLMC_DW3(NAME, SW)                                                                                       \
    static __attribute__((noinline)) void NAME(int32_t *y, const int16_t *buf, const uint32_t *wp, int32_t r1,  \
                                               int32_t r2, int32_t oh, int32_t ow, int32_t rs) {                \
        uint32_t w00 = wp[0], w01 = wp[1], w10 = wp[2], w11 = wp[3], w20 = wp[4], w21 = wp[5];                   \
        for (int32_t oy = 0; oy < oh; oy++) {                                                                    \
            const int16_t *p0 = buf + (size_t)oy * rs, *p1 = p0 + r1, *p2 = p0 + r2;                             \
            int32_t *ye = y + ow;                                                                                \
            for (; y < ye; y++, p0 += SW, p1 += SW, p2 += SW) {                                                  \
                uint32_t a = __smuad(ld32(p0), w00);                                                             \
                a = __smlad(ld32(p0 + 2), w01, a);                                                               \
                a = __smlad(ld32(p1), w10, a);                                                                   \
                a = __smlad(ld32(p1 + 2), w11, a);                                                               \
                a = __smlad(ld32(p2), w20, a);                                                                   \
                a = __smlad(ld32(p2 + 2), w21, a);                                                               \
                *y = (int32_t)a;                                                                                 \
            }                                                                                                    \
        }                                                                                                        \
    }
SLMC_DW3(dw3_s1, 1)
SLMC_DW3(dw3_s2, 2)

/* four outputs of a row per pass for kernels of two pairs per row (3 or 4 columns, undilated), the stride a
 * constant; returns how many outputs it wrote (a multiple of 4) */
#define SLMC_TAPS4(NAME, SW)                                                                                     \
    static __attribute__((noinline)) int32_t NAME(int32_t *y, const int16_t *base, const int32_t *roff,          \
                                                  const uint32_t *wp, int32_t rows, int32_t ow) {                \
        int32_t ox = 0;                                                                                          \
        for (; ox + 4 <= ow; ox += 4, y += 4) {                                                                  \
            const int16_t *px = base + (size_t)ox * SW;                                                          \
            const uint32_t *q = wp;                                                                              \
            const int32_t *ro = roff, *re = roff + rows;                                                         \
            uint32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;                                                             \
            for (; ro < re; ro++, q += 2) {                                                                      \
                const int16_t *pr = px + *ro;                                                                    \
                uint32_t u = q[0], v = q[1];                                                                     \
                a0 = __smlad(ld32(pr), u, a0);                                                                   \
                a0 = __smlad(ld32(pr + 2), v, a0);                                                               \
                a1 = __smlad(ld32(pr + SW), u, a1);                                                              \
                a1 = __smlad(ld32(pr + SW + 2), v, a1);                                                          \
                a2 = __smlad(ld32(pr + 2 * SW), u, a2);                                                          \
                a2 = __smlad(ld32(pr + 2 * SW + 2), v, a2);                                                      \
                a3 = __smlad(ld32(pr + 3 * SW), u, a3);                                                          \
                a3 = __smlad(ld32(pr + 3 * SW + 2), v, a3);                                                      \
            }                                                                                                    \
            y[0] = (int32_t)a0, y[1] = (int32_t)a1, y[2] = (int32_t)a2, y[3] = (int32_t)a3;                      \
        }                                                                                                        \
        return ox;                                                                                               \
    }
SLMC_TAPS4(taps4_s1, 1)
SLMC_TAPS4(taps4_s2, 2)

/* one input plane (h x wd) into the widened padded plane (PH x PW, the input at row pt, column pl): x - zx as
 * int16, four bytes per pass by UXTB16 and SSUB16 (flip turns int8 into uint8 + 128). Only the input's own
 * positions are written: the padding is the same for every plane, zeroed once per call. */
static __attribute__((noinline)) void widen(int16_t *dst, const uint8_t *src, int32_t h, int32_t wd, int32_t PH,
                                            int32_t PW, int32_t pt, int32_t pl, uint32_t flip, int32_t zx) {
    uint32_t zz = (uint32_t)(zx & 0xffff) * 0x10001u, f4 = flip * 0x101u;
    uint8_t f1 = (uint8_t)flip;
    int32_t nx = wd + pl > PW ? PW - pl : wd, y1 = pt + h < PH ? pt + h : PH;
    for (int32_t py = pt; py < y1; py++) {
        const uint8_t *s = src + (size_t)(py - pt) * wd;
        int16_t *d = dst + (size_t)py * PW + pl;
        int32_t i = 0;
        for (; i + 4 <= nx; i += 4) {
            uint32_t v = ld32(s + i) ^ f4, e = __ssub16(__uxtb16(v), zz);
            uint32_t o = __ssub16(__uxtb16((v >> 8) | (v << 24)), zz);
            uint32_t lo = (e & 0xffffu) | (o << 16), hi = (e >> 16) | (o & 0xffff0000u);
            memcpy(d + i, &lo, 4);
            memcpy(d + i + 2, &hi, 4);
        }
        for (; i < nx; i++) d[i] = (int16_t)((int32_t)(uint8_t)(s[i] ^ f1) - zx);
    }
}

/* one output row of any kernel: each row of taps (input channel, depth, height) at roff, kp pairs along it,
 * two outputs per pass sharing each weight pair's load */
static __attribute__((noinline)) void taps(int32_t *y, const int16_t *base, const int32_t *roff, const uint32_t *wp,
                                           int32_t rows, int32_t kp, int32_t step, int32_t ow, int32_t sw) {
    int32_t ox = 0;
    for (; ox + 2 <= ow; ox += 2) {
        const int16_t *px = base + (size_t)ox * sw;
        const uint32_t *q = wp;
        uint32_t a0 = 0, a1 = 0;
        for (int32_t r = 0; r < rows; r++) {
            const int16_t *pr = px + roff[r];
            for (int32_t j = 0; j < kp; j++, pr += step) {
                uint32_t w = *q++;
                a0 = __smlad(ld32(pr), w, a0);
                a1 = __smlad(ld32(pr + sw), w, a1);
            }
        }
        y[ox] = (int32_t)a0;
        y[ox + 1] = (int32_t)a1;
    }
    if (ox < ow) {
        const int16_t *px = base + (size_t)ox * sw;
        const uint32_t *q = wp;
        uint32_t a = 0;
        for (int32_t r = 0; r < rows; r++)
            for (int32_t j = 0; j < kp; j++) a = __smlad(ld32(px + roff[r] + j * step), *q++, a);
        y[ox] = (int32_t)a;
    }
}

void slmc_conv_integer_dsp(int32_t *y, const void *x, int xt, const void *w, int wt, const void *xz, const void *wz,
                           int nwz, const int32_t *g, void *scratch) {
    int32_t n = g[0], c = g[1], dp = g[2], h = g[3], wd = g[4], m = g[5], kd = g[6], kh = g[7], kw = g[8];
    int32_t od = g[9], oh = g[10], ow = g[11], sd = g[13], sh = g[14], sw = g[15], dd = g[16], dh = g[17], dw = g[18];
    int32_t pf = g[19], pt = g[20], pl = g[21], groups = g[12];
    int32_t cg = c / groups, mg = m / groups;
    int32_t zx = xz ? (int32_t)slmc_ldt(xz, xt, 0) : 0;
    uint32_t flip = xt == 2 ? 0x00800080u : 0;
    int32_t zxr = xt == 2 ? zx + 128 : zx;  /* the zero point of the flipped bytes */
    size_t plane = (size_t)dp * h * wd, oplane = (size_t)od * oh * ow;
    const int8_t *wq = (const int8_t *)w;
    (void)wt;
    if (kd == 1 && kh == 1 && kw == 1 && od == dp && oh == h && ow == wd && pf == 0 && pt == 0 && pl == 0 && groups == 1) {
        for (int32_t ni = 0; ni < n; ni++)
            pointwise(y + (size_t)ni * m * oplane, (const uint8_t *)x + (size_t)ni * c * plane, flip, zxr, wq, wz, nwz,
                      c, m, plane, scratch);
        return;
    }
    int32_t PD = (od - 1) * sd + (kd - 1) * dd + 1, PH = (oh - 1) * sh + (kh - 1) * dh + 1;
    int32_t PW = (ow - 1) * sw + (kw - 1) * dw + 2;  /* + 1: the zero-weight half of an odd row's last pair */
    int32_t kp = dw == 1 ? (kw + 1) / 2 : kw, step = dw == 1 ? 2 : dw, rows = cg * kd * kh;
    size_t vol = (size_t)PD * PH * PW, hw = ((size_t)cg * vol + 1) & ~(size_t)1;
    int16_t *buf = (int16_t *)scratch;
    uint32_t *wp = (uint32_t *)(buf + hw);
    int32_t *roff = (int32_t *)(wp + (size_t)rows * kp);
    for (int32_t ci = 0, r = 0; ci < cg; ci++)
        for (int32_t kz = 0; kz < kd; kz++)
            for (int32_t ky = 0; ky < kh; ky++, r++)
                roff[r] = (int32_t)((size_t)ci * vol + ((size_t)kz * dd * PH + (size_t)ky * dh) * PW);
    int special = cg == 1 && kd == 1 && kh == 3 && kp == 2;  /* 3x3 depthwise: the six pairs in registers */
    memset(buf, 0, hw * 2);  /* the padding, never written after */
    for (int32_t ni = 0; ni < n; ni++)
        for (int32_t gi = 0; gi < groups; gi++) {
            for (int32_t ci = 0; ci < cg; ci++)
                for (int32_t pz = 0; pz < PD; pz++) {
                    int32_t iz = pz - pf;
                    const uint8_t *src = (const uint8_t *)x + ((size_t)ni * c + (size_t)gi * cg + ci) * plane;
                    int16_t *dst = buf + (size_t)ci * vol + (size_t)pz * PH * PW;
                    if (iz >= 0 && iz < dp) widen(dst, src + (size_t)iz * h * wd, h, wd, PH, PW, pt, pl, flip, zxr);
                }
            for (int32_t mo = 0; mo < mg; mo++) {
                int32_t mi = gi * mg + mo, zw = wzp(wz, nwz, mi);
                const int8_t *wm = wq + (size_t)mi * rows * kw;
                for (int32_t r = 0; r < rows; r++)
                    for (int32_t j = 0; j < kp; j++) {
                        int32_t k0 = dw == 1 ? 2 * j : j, k1 = k0 + 1;
                        int32_t v0 = (int32_t)wm[(size_t)r * kw + k0] - zw;
                        int32_t v1 = dw == 1 && k1 < kw ? (int32_t)wm[(size_t)r * kw + k1] - zw : 0;
                        wp[(size_t)r * kp + j] = (uint16_t)v0 | (uint32_t)(uint16_t)v1 << 16;
                    }
                int32_t *ym = y + ((size_t)ni * m + mi) * oplane;
                for (int32_t oz = 0; oz < od; oz++) {
                    const int16_t *bz = buf + (size_t)oz * sd * PH * PW;
                    int32_t *yz = ym + (size_t)oz * oh * ow;
                    if (special && sw == 1) dw3_s1(yz, bz, wp, roff[1], roff[2], oh, ow, sh * PW);
                    else if (special && sw == 2) dw3_s2(yz, bz, wp, roff[1], roff[2], oh, ow, sh * PW);
                    else
                        for (int32_t oy = 0; oy < oh; oy++) {
                            int32_t *yr = yz + (size_t)oy * ow, done = 0;
                            const int16_t *br = bz + (size_t)oy * sh * PW;
                            if (kp == 2 && step == 2 && sw == 1) done = taps4_s1(yr, br, roff, wp, rows, ow);
                            else if (kp == 2 && step == 2 && sw == 2) done = taps4_s2(yr, br, roff, wp, rows, ow);
                            if (done < ow) taps(yr + done, br + (size_t)done * sw, roff, wp, rows, kp, step, ow - done, sw);
                        }
                }
            }
        }
}
