#include "slmc_kernels.h"

/* ONNX ConvInteger: 8-bit data and weights (xt, wt: 2 int8, 3 uint8), exact int32 sums of
 * (x - x_zp) * (w - w_zp[m]) (NC + 1 to 3 spatial axes, run as 3-D; groups, strides, dilations, pads; a
 * position in the padding contributes nothing, as padding with x_zp does). w_zp holds one value or one per
 * output channel (nwz); either zero point may be NULL. Weight-stationary, as conv_f32.c: each output plane
 * starts at 0, then every weight adds its shifted input rows, the valid columns worked out once per weight, so
 * the inner loop has no test (integer sums are exact in any order); a pointwise conv of one group takes four
 * output channels per pass instead. y must not overlap x. g holds {n, c, d, h, w,
 * m, kd, kh, kw, od, oh, ow, group, stride_d, stride_h, stride_w, dilation_d, dilation_h, dilation_w,
 * pad_front, pad_top, pad_left}. */

static inline int32_t ld8(const void *p, int t, size_t i) {
    return t == 2 ? (int32_t)((const int8_t *)p)[i] : (int32_t)((const uint8_t *)p)[i];
}

/* A pointwise conv of one group (1x1, stride 1, no pads): output-stationary, four output channels per pass,
 * so each input byte is loaded once for four multiply-adds; the weight zero points come off at the end
 * (sum (x - zx)(w - zw) = sum (x - zx) w - zw sum (x - zx)). */
#define SLMC_POINTWISE(NAME, XT, WT)                                                                           \
    static void NAME(int32_t *y, const XT *x, const WT *w, int32_t zx, const void *wz, int wt, int nwz,        \
                     int32_t c, int32_t m, size_t plane) {                                                     \
        for (int32_t mi = 0; mi < m; mi += 4) {                                                                \
            int32_t nb = m - mi < 4 ? m - mi : 4;                                                              \
            const WT *w0 = w + (size_t)mi * c, *w1 = w0 + (nb > 1 ? c : 0), *w2 = w0 + (nb > 2 ? 2 * c : 0);  \
            const WT *w3 = w0 + (nb > 3 ? 3 * c : 0);                                                          \
            int32_t *y0 = y + (size_t)mi * plane, zw[4];                                                       \
            for (int32_t j = 0; j < nb; j++) zw[j] = wz ? ld8(wz, wt, nwz > 1 ? (size_t)(mi + j) : 0) : 0;    \
            for (size_t i = 0; i < plane; i++) {                                                               \
                int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0, sum = 0;                                               \
                const XT *xp = x + i;                                                                          \
                for (int32_t ci = 0; ci < c; ci++, xp += plane) {                                              \
                    int32_t v = (int32_t)*xp - zx;                                                             \
                    sum += v;                                                                                  \
                    a0 += v * w0[ci];                                                                          \
                    a1 += v * w1[ci];                                                                          \
                    a2 += v * w2[ci];                                                                          \
                    a3 += v * w3[ci];                                                                          \
                }                                                                                              \
                int32_t acc[4] = {a0, a1, a2, a3};                                                             \
                for (int32_t j = 0; j < nb; j++) y0[(size_t)j * plane + i] = acc[j] - zw[j] * sum;             \
            }                                                                                                  \
        }                                                                                                      \
    }
SLMC_POINTWISE(pw_u8_i8, uint8_t, int8_t)
SLMC_POINTWISE(pw_u8_u8, uint8_t, uint8_t)
SLMC_POINTWISE(pw_i8_i8, int8_t, int8_t)
SLMC_POINTWISE(pw_i8_u8, int8_t, uint8_t)

void slmc_conv_integer(int32_t *y, const void *x, int xt, const void *w, int wt, const void *xz, const void *wz,
                       int nwz, const int32_t *g) {
    int32_t n = g[0], c = g[1], dp = g[2], h = g[3], wd = g[4], m = g[5], kd = g[6], kh = g[7], kw = g[8];
    int32_t od = g[9], oh = g[10], ow = g[11], sd = g[13], sh = g[14], sw = g[15], dd = g[16], dh = g[17], dw = g[18];
    int32_t pf = g[19], pt = g[20], pl = g[21];
    int32_t cg = c / g[12], mg = m / g[12];
    int32_t zx = xz ? ld8(xz, xt, 0) : 0;
    size_t plane = (size_t)dp * h * wd, oplane = (size_t)od * oh * ow;
    /* a 1x1 kernel over the whole input (stride 1, no pads), one group */
    if (kd == 1 && kh == 1 && kw == 1 && od == dp && oh == h && ow == wd && pf == 0 && pt == 0 && pl == 0 && g[12] == 1) {
        for (int32_t ni = 0; ni < n; ni++) {
            int32_t *yn = y + (size_t)ni * m * oplane;
            const void *xn = (const uint8_t *)x + (size_t)ni * c * plane;
            if (xt == 3 && wt == 2) pw_u8_i8(yn, (const uint8_t *)xn, (const int8_t *)w, zx, wz, wt, nwz, c, m, plane);
            else if (xt == 3) pw_u8_u8(yn, (const uint8_t *)xn, (const uint8_t *)w, zx, wz, wt, nwz, c, m, plane);
            else if (wt == 2) pw_i8_i8(yn, (const int8_t *)xn, (const int8_t *)w, zx, wz, wt, nwz, c, m, plane);
            else pw_i8_u8(yn, (const int8_t *)xn, (const uint8_t *)w, zx, wz, wt, nwz, c, m, plane);
        }
        return;
    }
    for (int32_t ni = 0; ni < n; ni++)
        for (int32_t mi = 0; mi < m; mi++) {
            size_t x0 = ((size_t)ni * c + (size_t)(mi / mg) * cg) * plane, w0 = (size_t)mi * cg * kd * kh * kw;
            int32_t zw = wz ? ld8(wz, wt, nwz > 1 ? (size_t)mi : 0) : 0;
            int32_t *yp = y + ((size_t)ni * m + mi) * oplane;
            for (size_t i = 0; i < oplane; i++) yp[i] = 0;
            for (int32_t ci = 0; ci < cg; ci++)
                for (int32_t kz = 0; kz < kd; kz++)
                    for (int32_t ky = 0; ky < kh; ky++)
                        for (int32_t kx = 0; kx < kw; kx++) {
                            int32_t wv = ld8(w, wt, w0 + (((size_t)ci * kd + kz) * kh + ky) * kw + kx) - zw;
                            int32_t off = kx * dw - pl;  /* ix = ox * sw + off */
                            int32_t ox0 = off >= 0 ? 0 : (-off + sw - 1) / sw;
                            int32_t ox1 = wd - 1 - off < 0 ? 0 : (wd - 1 - off) / sw + 1;
                            if (ox1 > ow) ox1 = ow;
                            if (wv == 0) continue;
                            for (int32_t oz = 0; oz < od; oz++) {
                                int32_t iz = oz * sd - pf + kz * dd;
                                if (iz < 0 || iz >= dp) continue;
                                for (int32_t oy = 0; oy < oh; oy++) {
                                    int32_t iy = oy * sh - pt + ky * dh;
                                    if (iy < 0 || iy >= h) continue;
                                    size_t xr = x0 + (((size_t)ci * dp + iz) * h + iy) * wd;
                                    int32_t *yr = yp + ((size_t)oz * oh + oy) * ow;
                                    if (xt == 2) {
                                        const int8_t *xp = (const int8_t *)x + xr;
                                        for (int32_t ox = ox0; ox < ox1; ox++) yr[ox] += ((int32_t)xp[ox * sw + off] - zx) * wv;
                                    } else {
                                        const uint8_t *xp = (const uint8_t *)x + xr;
                                        for (int32_t ox = ox0; ox < ox1; ox++) yr[ox] += ((int32_t)xp[ox * sw + off] - zx) * wv;
                                    }
                                }
                            }
                        }
        }
}
