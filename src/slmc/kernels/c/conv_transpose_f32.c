#include "slmc_kernels.h"

/* ONNX ConvTranspose on float32 (NC + 1 to 3 spatial axes, run as 3-D with the missing axes of size 1),
 * groups, strides, dilations, pads (negative at the end: an output_shape past the full result) and output
 * padding. Each output starts from its bias and gathers the input positions that reach it: output oy takes
 * input iy where oy = iy * stride - pad + ky * dilation, so each output sums its terms in (channel, kz, ky,
 * kx) order. w is [c, m / group, kd, kh, kw]; y must not overlap x. g holds {n, c, d, h, w, m, kd, kh, kw,
 * od, oh, ow, group, stride_d, stride_h, stride_w, dilation_d, dilation_h, dilation_w, pad_front, pad_top,
 * pad_left}. */

static int32_t slmc_tap(int32_t o, int32_t pad, int32_t k, int32_t dil, int32_t stride, int32_t n) {
    int32_t t = o + pad - k * dil;  /* = i * stride */
    if (t < 0 || t % stride) return -1;
    return t / stride < n ? t / stride : -1;
}

void slmc_conv_transpose3d_f32(float *y, const float *x, const float *w, const float *b, const int32_t *g) {
    int32_t n = g[0], c = g[1], dp = g[2], h = g[3], wd = g[4], m = g[5], kd = g[6], kh = g[7], kw = g[8];
    int32_t od = g[9], oh = g[10], ow = g[11];
    int32_t cg = c / g[12], mg = m / g[12];
    size_t plane = (size_t)dp * h * wd, kvol = (size_t)kd * kh * kw;
    for (int32_t ni = 0; ni < n; ni++)
        for (int32_t mi = 0; mi < m; mi++) {
            int32_t gi = mi / mg, mj = mi % mg;
            const float *xg = x + ((size_t)ni * c + (size_t)gi * cg) * plane;
            float *yp = y + ((size_t)ni * m + mi) * od * oh * ow;
            for (int32_t oz = 0; oz < od; oz++)
                for (int32_t oy = 0; oy < oh; oy++)
                    for (int32_t ox = 0; ox < ow; ox++) {
                        float acc = b ? b[mi] : 0.0f;
                        for (int32_t ci = 0; ci < cg; ci++) {
                            const float *wk = w + ((size_t)(gi * cg + ci) * mg + mj) * kvol;
                            const float *xc = xg + (size_t)ci * plane;
                            for (int32_t kz = 0; kz < kd; kz++) {
                                int32_t iz = slmc_tap(oz, g[19], kz, g[16], g[13], dp);
                                if (iz < 0) continue;
                                for (int32_t ky = 0; ky < kh; ky++) {
                                    int32_t iy = slmc_tap(oy, g[20], ky, g[17], g[14], h);
                                    if (iy < 0) continue;
                                    for (int32_t kx = 0; kx < kw; kx++) {
                                        int32_t ix = slmc_tap(ox, g[21], kx, g[18], g[15], wd);
                                        if (ix < 0) continue;
                                        acc += xc[((size_t)iz * h + iy) * wd + ix] * wk[((size_t)kz * kh + ky) * kw + kx];
                                    }
                                }
                            }
                        }
                        yp[((size_t)oz * oh + oy) * ow + ox] = acc;
                    }
        }
}
