#include "slmc_kernels.h"

/* ONNX BatchNormalization at inference on float32, for what the fold pass (passes/fold_batchnorm.py) could
 * not fold into a Conv or Gemm: y = (x - mean) * (scale / sqrt(var + eps)) + bias per channel, x being
 * [n, c, inner]. Element i is written after it is read, so y may lie over x. */

void slmc_batch_norm_f32(float *y, const float *x, const float *scale, const float *bias, const float *mean,
                         const float *var, int32_t n, int32_t c, int32_t inner, float eps) {
    for (int32_t ni = 0; ni < n; ni++)
        for (int32_t ci = 0; ci < c; ci++) {
            float s = scale[ci] / sqrtf(var[ci] + eps), mu = mean[ci], b = bias[ci];
            size_t base = ((size_t)ni * c + ci) * inner;
            for (int32_t i = 0; i < inner; i++) y[base + i] = (x[base + i] - mu) * s + b;
        }
}
