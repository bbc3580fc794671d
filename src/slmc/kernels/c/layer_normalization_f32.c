#include "slmc_kernels.h"

/* ONNX LayerNormalization over the last n elements of each of `outer` rows: y = (x - mean) * invstd
 * * scale + bias, scale and bias n long (bias may be NULL). mean and invstd (outer values each) are
 * written when not NULL: they are optional outputs of the ONNX operator. */
void slmc_layer_normalization_f32(float *y, float *mean_out, float *invstd_out, const float *x, const float *scale,
                                  const float *bias, int outer, int n, float eps) {
    for (int o = 0; o < outer; o++) {
        const float *xr = x + (size_t)o * n;
        float *yr = y + (size_t)o * n;
        float mean = 0.0f, var = 0.0f;
        for (int j = 0; j < n; j++) mean += xr[j];
        mean /= (float)n;
        for (int j = 0; j < n; j++) { float d = xr[j] - mean; var += d * d; }
        var /= (float)n;
        float inv = 1.0f / sqrtf(var + eps);
        for (int j = 0; j < n; j++) yr[j] = (xr[j] - mean) * inv * scale[j] + (bias ? bias[j] : 0.0f);
        if (mean_out) mean_out[o] = mean;
        if (invstd_out) invstd_out[o] = inv;
    }
}
