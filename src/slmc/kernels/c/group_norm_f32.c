#include "slmc_kernels.h"

/* ONNX GroupNormalization and InstanceNormalization (a group per channel) on float32: x is [n, c, inner],
 * its channels in groups of cg; each group of each sample (cg * inner values) is normalised by its own mean
 * and variance, then scaled and shifted per channel. Element i is written after the group's statistics are
 * taken and after it is read, so y may lie over x. */

void slmc_group_norm_f32(float *y, const float *x, const float *scale, const float *bias, int32_t n, int32_t c,
                         int32_t cg, int32_t inner, float eps) {
    size_t len = (size_t)cg * inner;
    for (int32_t gi = 0; gi < n * (c / cg); gi++) {
        const float *xg = x + (size_t)gi * len;
        float *yg = y + (size_t)gi * len;
        float mean = 0.0f, var = 0.0f;
        for (size_t i = 0; i < len; i++) mean += xg[i];
        mean /= (float)len;
        for (size_t i = 0; i < len; i++) { float d = xg[i] - mean; var += d * d; }
        var /= (float)len;
        float inv = 1.0f / sqrtf(var + eps);
        int32_t ch0 = (gi % (c / cg)) * cg;
        for (int32_t k = 0; k < cg; k++) {
            float s = scale[ch0 + k] * inv, t = bias[ch0 + k];
            for (int32_t i = 0; i < inner; i++) {
                size_t e = (size_t)k * inner + i;
                yg[e] = (xg[e] - mean) * s + t;
            }
        }
    }
}
