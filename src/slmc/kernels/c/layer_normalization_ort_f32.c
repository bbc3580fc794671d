#include "slmc_kernels.h"

#if defined(__GNUC__) && !defined(__clang__)
/* host-native builds pass -ffp-contract=fast: onnxruntime's products and sums here are not fused */
#pragma GCC optimize("fp-contract=off")
#endif

/* ONNX LayerNormalization as onnxruntime 1.32's CPU provider computes it on x86-64 with AVX2 (MLAS's
 * MlasLayerNormKernelAvx2, rows of 8 or more): the mean from a double sum in 4 lanes, the variance
 * centred on it in 8 float lanes with fused multiply-adds, the lanes reduced as the kernel's shuffles
 * do, 1 / sqrtf(var / n + eps), then y = fma((x - mean) * inv, scale, bias). Its scalar tails are as gcc
 * compiled them: in the variance, a run of 4 vectorised in order (product rounded, then added), the rest
 * fused. Rows shorter than 8 take another onnxruntime path, not reproduced (within 1e-6 of it).
 * Same signature as slmc_layer_normalization_f32; slmc_fmaf is one rounding on every target. */
void slmc_layer_normalization_ort_f32(float *y, float *mean_out, float *invstd_out, const float *x,
                                      const float *scale, const float *bias, int outer, int n, float eps) {
    for (int o = 0; o < outer; o++) {
        const float *xr = x + (size_t)o * n;
        float *yr = y + (size_t)o * n;
        double lane[4] = {0.0, 0.0, 0.0, 0.0};
        int i = 0, k;
        for (; i + 4 <= n; i += 4)
            for (k = 0; k < 4; k++) lane[k] += (double)xr[i + k];
        double dsum = (lane[0] + lane[2]) + (lane[1] + lane[3]);
        for (; i < n; i++) dsum += (double)xr[i];
        float mean = (float)(dsum / (double)n);
        float acc[8] = {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
        for (i = 0; i + 8 <= n; i += 8)
            for (k = 0; k < 8; k++) {
                float d = xr[i + k] - mean;
                acc[k] = slmc_fmaf(d, d, acc[k]);
            }
        float var = ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7]));
        if (i + 4 <= n) {
            for (k = 0; k < 4; k++) {
                float d = xr[i + k] - mean, dd = d * d;
                var += dd;
            }
            i += 4;
        }
        for (; i < n; i++) {
            float d = xr[i] - mean;
            var = slmc_fmaf(d, d, var);
        }
        float inv = 1.0f / sqrtf(var / (float)n + eps);
        for (int j = 0; j < n; j++) {
            float v = (xr[j] - mean) * inv;
            yr[j] = bias ? slmc_fmaf(v, scale[j], bias[j]) : v * scale[j];
        }
        if (mean_out) mean_out[o] = mean;
        if (invstd_out) invstd_out[o] = inv;
    }
}
