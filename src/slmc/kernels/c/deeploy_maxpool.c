#include "slmc_kernels.h"

/* ONNX MaxPool on integer data (NCHW; 1-D as 2-D with h = kh = 1): the largest value of each window,
 * positions in the padding skipped (ONNX pads with -inf). The output has the input's type. g holds
 * {n * c, h, w, kh, kw, oh, ow, stride_h, stride_w, dilation_h, dilation_w, pad_top, pad_left}. */

void slmc_int_maxpool2d(void *y, int yt, const void *x, int xt, const int32_t *g) {
    int32_t planes = g[0], h = g[1], wd = g[2], kh = g[3], kw = g[4], oh = g[5], ow = g[6];
    for (int32_t p = 0; p < planes; p++)
        for (int32_t oy = 0; oy < oh; oy++)
            for (int32_t ox = 0; ox < ow; ox++) {
                int64_t best = 0;
                int any = 0;
                for (int32_t ky = 0; ky < kh; ky++) {
                    int32_t iy = oy * g[7] - g[11] + ky * g[9];
                    if (iy < 0 || iy >= h) continue;
                    for (int32_t kx = 0; kx < kw; kx++) {
                        int32_t ix = ox * g[8] - g[12] + kx * g[10];
                        if (ix < 0 || ix >= wd) continue;
                        int64_t v = slmc_ldt(x, xt, ((size_t)p * h + iy) * wd + ix);
                        if (!any || v > best) best = v;
                        any = 1;
                    }
                }
                slmc_stt(y, yt, ((size_t)p * oh + oy) * ow + ox, best);
            }
}
