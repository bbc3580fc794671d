#include "slmc_kernels.h"

/* RMSNorm as Deeploy's float tests define it (default domain, attribute eps), over rows of `width`:
 * y = x / sqrt(mean(x^2) + eps) * w. */


void slmc_rms_norm_f32(float *y, const float *x, const float *w, int32_t rows, int32_t width, float eps) {
    for (int32_t r = 0; r < rows; r++) {
        const float *xr = x + (size_t)r * width;
        float ss = 0.0f;
        for (int32_t j = 0; j < width; j++) ss += xr[j] * xr[j];
        float inv = 1.0f / sqrtf(ss / (float)width + eps);
        for (int32_t j = 0; j < width; j++) y[(size_t)r * width + j] = xr[j] * inv * w[j];
    }
}
