#include "slmc_kernels.h"

void slmc_layernorm_f32(float *out, const float *x, const float *w, const float *b, int n, int dim, float eps) {
    for (int s = 0; s < n; s++) {
        const float *xr = x + (size_t)s * dim;
        float *o = out + (size_t)s * dim;
        float mean = 0.0f, var = 0.0f;
        for (int j = 0; j < dim; j++) mean += xr[j];
        mean /= (float)dim;
        for (int j = 0; j < dim; j++) { float d = xr[j] - mean; var += d * d; }
        var /= (float)dim;
        float inv = 1.0f / sqrtf(var + eps);
        for (int j = 0; j < dim; j++) o[j] = (xr[j] - mean) * inv * w[j] + b[j];
    }
}
