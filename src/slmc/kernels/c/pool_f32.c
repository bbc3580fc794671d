#include "slmc_kernels.h"

/* ONNX MaxPool and AveragePool on float32 (NC + 1 to 3 spatial axes, run as 3-D with the missing axes of
 * size 1). Positions in the pads add nothing to a maximum (ONNX pads with -inf); an average divides by the
 * positions inside the input, or with count_include_pad by those inside the input and its pads (never those
 * a ceil_mode window reaches past the end pad: onnxruntime's and PyTorch's divisor). A MaxPool's Indices
 * (idx not NULL): where each maximum lies in the whole input, flattened row-major, or with col_major (ONNX's
 * storage_order 1) with the spatial axes taken first to last. g holds {n * c, d, h, w,
 * kd, kh, kw, od, oh, ow, stride_d, stride_h, stride_w, dilation_d, dilation_h, dilation_w, pad_front,
 * pad_top, pad_left, pad_back, pad_bottom, pad_right}. */

void slmc_pool3d_f32(float *y, int64_t *idx, const float *x, int average, int include_pad, int col_major,
                     const int32_t *g) {
    int32_t planes = g[0], dp = g[1], h = g[2], wd = g[3], kd = g[4], kh = g[5], kw = g[6];
    int32_t od = g[7], oh = g[8], ow = g[9];
    for (int32_t p = 0; p < planes; p++)
        for (int32_t oz = 0; oz < od; oz++)
            for (int32_t oy = 0; oy < oh; oy++)
                for (int32_t ox = 0; ox < ow; ox++) {
                    float best = -INFINITY, sum = 0.0f;
                    int32_t count = 0;
                    int64_t at = 0;
                    for (int32_t kz = 0; kz < kd; kz++) {
                        int32_t iz = oz * g[10] - g[16] + kz * g[13];
                        for (int32_t ky = 0; ky < kh; ky++) {
                            int32_t iy = oy * g[11] - g[17] + ky * g[14];
                            for (int32_t kx = 0; kx < kw; kx++) {
                                int32_t ix = ox * g[12] - g[18] + kx * g[15];
                                if (iz < 0 || iz >= dp || iy < 0 || iy >= h || ix < 0 || ix >= wd) {
                                    if (include_pad && iz < dp + g[19] && iy < h + g[20] && ix < wd + g[21]) count++;
                                    continue;
                                }
                                float v = x[(((size_t)p * dp + iz) * h + iy) * wd + ix];
                                if (v > best || (v != v && best == best)) {  /* (a NaN propagates) */
                                    best = v;
                                    at = col_major ? iz + (int64_t)dp * (iy + (int64_t)h * ix)
                                                   : ((int64_t)iz * h + iy) * wd + ix;
                                }
                                sum += v;
                                count++;
                            }
                        }
                    }
                    size_t o = (((size_t)p * od + oz) * oh + oy) * ow + ox;
                    y[o] = average ? sum / (float)count : best;
                    if (idx) idx[o] = (int64_t)p * dp * h * wd + at;
                }
}
