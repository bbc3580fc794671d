#include "slmc_kernels.h"

/* ONNX Conv on float32 (NC + 1 to 3 spatial axes; a 1-D or 2-D conv runs as a 3-D one with the missing axes
 * of size 1), groups (depthwise included), strides, dilations and pads. Four paths, one result: a 1x1 conv
 * with stride 1 and no padding is a matrix product (mm_f32.c); a 1-D or 2-D conv works 4 output channels of a
 * group at a time (dense4), the channels left over 3x3 one input plane at a time (plane3x3, depthwise
 * included); anything else (3-D) weight-stationary: each output plane starts from its bias, then every weight
 * adds its shifted input rows, the valid columns worked out once per weight, so the inner loop has no test and
 * walks memory in order. Every path sums each output from its bias in (channel, kz, ky, kx) order, skipping
 * taps outside the input, so which one runs changes no bit. y must not overlap x. g holds {n, c, d, h, w, m, kd, kh, kw, od, oh, ow, group,
 * stride_d, stride_h, stride_w, dilation_d, dilation_h, dilation_w, pad_front, pad_top, pad_left}. */

void slmc_mm_f32(float *y, const float *a, const float *x, const float *bias, int32_t m, int32_t k, size_t n);

/* The taps k in [0, kn) of a window starting at i0 (step d) that fall inside [0, n): [*k0, *k1). */
static void tap_range(int32_t i0, int32_t d, int32_t n, int32_t kn, int32_t *k0, int32_t *k1) {
    *k0 = i0 >= 0 ? 0 : (-i0 + d - 1) / d;
    *k1 = n - 1 - i0 < 0 ? 0 : (n - 1 - i0) / d + 1;
    if (*k1 > kn) *k1 = kn;
    if (*k0 > *k1) *k0 = *k1;
}

/* A 2-D 3x3 conv (MobileNet's depthwise and stem, DS-CNN's depthwise, CCT's tokenizer), one input plane at a
 * time: the plane's nine weights stay in registers and each output adds its nine taps straight from three input
 * rows to its running sum (the bias, for the first input channel), where the weight-stationary loop pays a load
 * and a store of y per MAC and its row overhead per tap, which short rows do not amortise. The taps inside the
 * input are worked out per row and, at the left and right borders, per column, so no tap is tested. Each output
 * sums bias, then channels, each in (ky, kx) order: the same result. */
#define DW_ROW(r, wa, wb, wc, i, d) acc += wa * r[i]; acc += wb * r[i + d]; acc += wc * r[i + 2 * d]
#define DW_INTERIOR(d)                                                                                             \
    for (int32_t ox = oxa; ox < oxb; ox++) {                                                                   \
        int32_t i = ox * sw - pl;                                                                               \
        float acc = first ? b0 : yr[ox];                                                                        \
        DW_ROW(r0, w00, w01, w02, i, d); DW_ROW(r1, w10, w11, w12, i, d); DW_ROW(r2, w20, w21, w22, i, d);       \
        yr[ox] = acc;                                                                                           \
    }

static void plane3x3(float *yp, const float *xc, const float *wm, int first, float b0, int32_t h, int32_t wd, int32_t oh,
                     int32_t ow, int32_t sh, int32_t sw, int32_t dh, int32_t dw, int32_t pt, int32_t pl) {
    float w00 = wm[0], w01 = wm[1], w02 = wm[2], w10 = wm[3], w11 = wm[4], w12 = wm[5], w20 = wm[6], w21 = wm[7], w22 = wm[8];
    int32_t oxa = (pl + sw - 1) / sw;                 /* first ox whose leftmost tap is inside */
    int32_t last = wd - 1 + pl - 2 * dw;              /* ox * sw <= last: rightmost tap inside */
    int32_t oxb = last < 0 ? 0 : last / sw + 1;
    if (oxb > ow) oxb = ow;
    if (oxa > ow) oxa = ow;
    if (oxb < oxa) oxb = oxa;
    for (int32_t oy = 0; oy < oh; oy++) {
        int32_t iy0 = oy * sh - pt, ky0, ky1;
        float *yr = yp + (size_t)oy * ow;
        tap_range(iy0, dh, h, 3, &ky0, &ky1);
        if (ky0 == 0 && ky1 == 3) {
            const float *r0 = xc + (size_t)iy0 * wd, *r1 = r0 + (size_t)dh * wd, *r2 = r1 + (size_t)dh * wd;
            if (dw == 1) { DW_INTERIOR(1) } else { DW_INTERIOR(dw) }
        } else {
            for (int32_t ox = oxa; ox < oxb; ox++) {
                int32_t i = ox * sw - pl;
                float acc = first ? b0 : yr[ox];
                for (int32_t ky = ky0; ky < ky1; ky++) {
                    const float *r = xc + (ptrdiff_t)(iy0 + ky * dh) * wd, *wr = wm + 3 * ky;
                    DW_ROW(r, wr[0], wr[1], wr[2], i, dw);
                }
                yr[ox] = acc;
            }
        }
        for (int32_t ox = 0; ox < ow; ox++) {
            if (ox == oxa && oxb > oxa) ox = oxb;     /* the interior is done */
            if (ox >= ow) break;
            int32_t ix0 = ox * sw - pl, kx0, kx1;
            tap_range(ix0, dw, wd, 3, &kx0, &kx1);
            float acc = first ? b0 : yr[ox];
            for (int32_t ky = ky0; ky < ky1; ky++) {
                const float *r = xc + (ptrdiff_t)(iy0 + ky * dh) * wd;
                for (int32_t kx = kx0; kx < kx1; kx++) acc += wm[3 * ky + kx] * r[ix0 + kx * dw];
            }
            yr[ox] = acc;
        }
    }
}

/* A 2-D conv, 4 output channels of one group at a time (CCT's tokenizer, MobileNet's stem, DS-CNN's first layer):
 * away from the left and right borders, 4 channels x 4 positions of a row sum in registers, so each loaded
 * input serves four channels and each loaded weight four positions; the border columns sum 4 channels x 1
 * position over their taps inside the input. Each output sums its bias, then (ci, ky, kx) in order, taps
 * outside the input skipped: the same result as the weight-stationary loop below. */
#define DN_INIT(r) float r##0 = b##r, r##1 = b##r, r##2 = b##r, r##3 = b##r
#define DN_MAC(r, v) r##0 += v * x0; r##1 += v * x1; r##2 += v * x2; r##3 += v * x3
#define DN_PUT(r, yr) yr[0] = r##0; yr[1] = r##1; yr[2] = r##2; yr[3] = r##3

static void dense4(float *y, const float *xg, const float *w, const float *bias, size_t oplane, int32_t cg, int32_t h,
                   int32_t wd, int32_t kh, int32_t kw, int32_t oh, int32_t ow, int32_t sh, int32_t sw, int32_t dh, int32_t dw,
                   int32_t pt, int32_t pl) {
    size_t khw = (size_t)kh * kw, ws = (size_t)cg * khw, plane = (size_t)h * wd;
    float ba = bias ? bias[0] : 0.0f, bb = bias ? bias[1] : 0.0f, bc = bias ? bias[2] : 0.0f, bd = bias ? bias[3] : 0.0f;
    int32_t oxa = (pl + sw - 1) / sw, last = wd - 1 + pl - (kw - 1) * dw;
    int32_t oxb = last < 0 ? 0 : last / sw + 1;
    if (oxb > ow) oxb = ow;
    if (oxa > ow) oxa = ow;
    if (oxb < oxa) oxb = oxa;
    int32_t oxe = oxa + (oxb - oxa) / 4 * 4;          /* blocks of 4 in [oxa, oxe); the rest one at a time */
    for (int32_t oy = 0; oy < oh; oy++) {
        int32_t iy0 = oy * sh - pt, ky0, ky1;
        tap_range(iy0, dh, h, kh, &ky0, &ky1);
        float *ya = y + (size_t)oy * ow, *yb = ya + oplane, *yc = yb + oplane, *yd = yc + oplane;
        for (int32_t ox = oxa; ox < oxe; ox += 4) {
            DN_INIT(a); DN_INIT(b); DN_INIT(c); DN_INIT(d);
            for (int32_t ci = 0; ci < cg; ci++)
                for (int32_t ky = ky0; ky < ky1; ky++) {
                    const float *r = xg + ci * plane + (size_t)(iy0 + ky * dh) * wd + (ox * sw - pl);
                    const float *wr = w + ci * khw + (size_t)ky * kw;
                    for (int32_t kx = 0; kx < kw; kx++, r += dw, wr++) {
                        float x0 = r[0], x1 = r[sw], x2 = r[2 * sw], x3 = r[3 * sw];
                        float va = wr[0], vb = wr[ws], vc = wr[2 * ws], vd = wr[3 * ws];
                        DN_MAC(a, va); DN_MAC(b, vb); DN_MAC(c, vc); DN_MAC(d, vd);
                    }
                }
            DN_PUT(a, (ya + ox)); DN_PUT(b, (yb + ox)); DN_PUT(c, (yc + ox)); DN_PUT(d, (yd + ox));
        }
        for (int32_t ox = 0; ox < ow; ox++) {
            if (ox == oxa && oxe > oxa) ox = oxe;     /* the blocks are done */
            if (ox >= ow) break;
            int32_t ix0 = ox * sw - pl, kx0, kx1;
            tap_range(ix0, dw, wd, kw, &kx0, &kx1);
            float sa = ba, sb = bb, sc = bc, sd = bd;
            for (int32_t ci = 0; ci < cg; ci++)
                for (int32_t ky = ky0; ky < ky1; ky++) {
                    const float *r = xg + ci * plane + (size_t)(iy0 + ky * dh) * wd;
                    const float *wr = w + ci * khw + (size_t)ky * kw;
                    for (int32_t kx = kx0; kx < kx1; kx++) {
                        float xv = r[ix0 + kx * dw];
                        sa += wr[kx] * xv; sb += wr[kx + ws] * xv; sc += wr[kx + 2 * ws] * xv; sd += wr[kx + 3 * ws] * xv;
                    }
                }
            ya[ox] = sa; yb[ox] = sb; yc[ox] = sc; yd[ox] = sd;
        }
    }
}

void slmc_conv3d_f32(float *y, const float *x, const float *w, const float *b, const int32_t *g) {
    int32_t n = g[0], c = g[1], dp = g[2], h = g[3], wd = g[4], m = g[5], kd = g[6], kh = g[7], kw = g[8];
    int32_t od = g[9], oh = g[10], ow = g[11], sd = g[13], sh = g[14], sw = g[15], dd = g[16], dh = g[17], dw = g[18];
    int32_t pf = g[19], pt = g[20], pl = g[21];
    int32_t cg = c / g[12], mg = m / g[12];
    size_t plane = (size_t)dp * h * wd, oplane = (size_t)od * oh * ow;
    if (kd == 1 && kh == 1 && kw == 1 && sd == 1 && sh == 1 && sw == 1 && pf == 0 && pt == 0 && pl == 0 &&
        od == dp && oh == h && ow == wd) {
        for (int32_t ni = 0; ni < n; ni++)
            for (int32_t gi = 0; gi < g[12]; gi++)
                /* per group, Y[mg][plane] = b + W[mg][cg] X[cg][plane] (mm_f32.c) */
                slmc_mm_f32(y + ((size_t)ni * m + (size_t)gi * mg) * oplane, w + (size_t)gi * mg * cg,
                            x + ((size_t)ni * c + (size_t)gi * cg) * plane, b ? b + (size_t)gi * mg : NULL, mg, cg, oplane);
        return;
    }
    int32_t flat = kd == 1 && dp == 1 && od == 1 && pf == 0 && cg > 0;  /* a 1-D or 2-D conv */
    int32_t m4 = flat ? mg / 4 * 4 : 0;               /* channels of each group that dense4 works out */
    for (int32_t ni = 0; ni < n; ni++)
        for (int32_t gi = 0; gi < g[12]; gi++)
            for (int32_t mi = gi * mg; mi < gi * mg + m4; mi += 4)
                dense4(y + ((size_t)ni * m + mi) * oplane, x + ((size_t)ni * c + (size_t)gi * cg) * plane,
                       w + (size_t)mi * cg * kh * kw, b ? b + mi : NULL, oplane, cg, h, wd, kh, kw, oh, ow, sh, sw, dh, dw,
                       pt, pl);
    if (flat && kh == 3 && kw == 3) {
        for (int32_t ni = 0; ni < n; ni++)
            for (int32_t mi = 0; mi < m; mi++) {
                if (mi % mg < m4) continue;
                const float *xg = x + ((size_t)ni * c + (size_t)(mi / mg) * cg) * plane;
                for (int32_t ci = 0; ci < cg; ci++)
                    plane3x3(y + ((size_t)ni * m + mi) * oplane, xg + (size_t)ci * plane, w + ((size_t)mi * cg + ci) * 9,
                             ci == 0, b ? b[mi] : 0.0f, h, wd, oh, ow, sh, sw, dh, dw, pt, pl);
            }
        return;
    }
    for (int32_t ni = 0; ni < n; ni++)
        for (int32_t mi = 0; mi < m; mi++) {
            if (mi % mg < m4) continue;
            const float *xg = x + ((size_t)ni * c + (size_t)(mi / mg) * cg) * plane;
            const float *wm = w + (size_t)mi * cg * kd * kh * kw;
            float *yp = y + ((size_t)ni * m + mi) * oplane;
            float b0 = b ? b[mi] : 0.0f;
            for (size_t i = 0; i < oplane; i++) yp[i] = b0;
            for (int32_t ci = 0; ci < cg; ci++)
                for (int32_t kz = 0; kz < kd; kz++)
                    for (int32_t ky = 0; ky < kh; ky++)
                        for (int32_t kx = 0; kx < kw; kx++) {
                            float wv = wm[(((size_t)ci * kd + kz) * kh + ky) * kw + kx];
                            int32_t off = kx * dw - pl;  /* ix = ox * sw + off */
                            int32_t ox0 = off >= 0 ? 0 : (-off + sw - 1) / sw;
                            int32_t ox1 = wd - 1 - off < 0 ? 0 : (wd - 1 - off) / sw + 1;
                            if (ox1 > ow) ox1 = ow;
                            for (int32_t oz = 0; oz < od; oz++) {
                                int32_t iz = oz * sd - pf + kz * dd;
                                if (iz < 0 || iz >= dp) continue;
                                for (int32_t oy = 0; oy < oh; oy++) {
                                    int32_t iy = oy * sh - pt + ky * dh;
                                    if (iy < 0 || iy >= h) continue;
                                    const float *xr = xg + (((size_t)ci * dp + iz) * h + iy) * wd;
                                    float *yr = yp + ((size_t)oz * oh + oy) * ow;
                                    for (int32_t ox = ox0; ox < ox1; ox++) yr[ox] += wv * xr[ox * sw + off];
                                }
                            }
                        }
        }
}
