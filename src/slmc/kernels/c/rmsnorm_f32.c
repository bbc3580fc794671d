#include "slmc_kernels.h"

/* Reads the whole row before writing it, so out may equal x. */
void slmc_rmsnorm_f32(float *out, const float *x, const float *w, int n, int dim, float eps) {
    for (int s = 0; s < n; s++) {
        const float *xr = x + (size_t)s * dim;
        float *o = out + (size_t)s * dim;
        float ss = 0.0f;
        for (int j = 0; j < dim; j++) ss += xr[j] * xr[j];
        ss /= (float)dim;
        ss += eps;
        ss = 1.0f / sqrtf(ss);
        for (int j = 0; j < dim; j++) o[j] = w[j] * (ss * xr[j]);
    }
}
