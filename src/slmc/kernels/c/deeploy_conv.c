#include "slmc_kernels.h"

/* ONNX Conv on integer data (NCHW; a 1-D conv is a 2-D one with h = kh = 1): operands of any integer
 * type, exact sums in int64 stored to the output type the importer proved (int32 or int64); positions
 * in the padding contribute nothing. g holds the geometry:
 * {n, c, h, w, m, kh, kw, oh, ow, group, stride_h, stride_w, dilation_h, dilation_w, pad_top, pad_left}. */

void slmc_int_conv2d(void *y, int yt, const void *x, int xt, const void *w, int wt, const void *b, int bt,
                     const int32_t *g) {
    int32_t n = g[0], c = g[1], h = g[2], wd = g[3], m = g[4], kh = g[5], kw = g[6], oh = g[7], ow = g[8];
    int32_t cg = c / g[9], mg = m / g[9];
    for (int32_t ni = 0; ni < n; ni++)
        for (int32_t mi = 0; mi < m; mi++) {
            size_t x0 = ((size_t)ni * c + (size_t)(mi / mg) * cg) * h * wd, w0 = (size_t)mi * cg * kh * kw;
            for (int32_t oy = 0; oy < oh; oy++)
                for (int32_t ox = 0; ox < ow; ox++) {
                    int64_t acc = b ? slmc_ldt(b, bt, mi) : 0;
                    for (int32_t ci = 0; ci < cg; ci++)
                        for (int32_t ky = 0; ky < kh; ky++) {
                            int32_t iy = oy * g[10] - g[14] + ky * g[12];
                            if (iy < 0 || iy >= h) continue;
                            for (int32_t kx = 0; kx < kw; kx++) {
                                int32_t ix = ox * g[11] - g[15] + kx * g[13];
                                if (ix < 0 || ix >= wd) continue;
                                acc += slmc_ldt(x, xt, x0 + ((size_t)ci * h + iy) * wd + ix) *
                                       slmc_ldt(w, wt, w0 + ((size_t)ci * kh + ky) * kw + kx);
                            }
                        }
                    slmc_stt(y, yt, (((size_t)ni * m + mi) * oh + oy) * ow + ox, acc);
                }
        }
}
