#include "slmc_kernels.h"

/* ONNX Conv on float32 (NC + 1 to 3 spatial axes; a 1-D or 2-D conv runs as a 3-D one with the missing axes
 * of size 1), groups (depthwise included), strides, dilations and pads. Weight-stationary: each output plane
 * starts from its bias, then every weight adds its shifted input rows, the valid columns worked out once per
 * weight, so the inner loop has no test and walks memory in order. Each output sums its terms in (channel,
 * kz, ky, kx) order. y must not overlap x. g holds {n, c, d, h, w, m, kd, kh, kw, od, oh, ow, group,
 * stride_d, stride_h, stride_w, dilation_d, dilation_h, dilation_w, pad_front, pad_top, pad_left}. */

void slmc_conv3d_f32(float *y, const float *x, const float *w, const float *b, const int32_t *g) {
    int32_t n = g[0], c = g[1], dp = g[2], h = g[3], wd = g[4], m = g[5], kd = g[6], kh = g[7], kw = g[8];
    int32_t od = g[9], oh = g[10], ow = g[11], sd = g[13], sh = g[14], sw = g[15], dd = g[16], dh = g[17], dw = g[18];
    int32_t pf = g[19], pt = g[20], pl = g[21];
    int32_t cg = c / g[12], mg = m / g[12];
    size_t plane = (size_t)dp * h * wd, oplane = (size_t)od * oh * ow;
    for (int32_t ni = 0; ni < n; ni++)
        for (int32_t mi = 0; mi < m; mi++) {
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
