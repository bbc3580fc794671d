#include "slmc_kernels.h"

/* x times a constant factor: the embedding, residual and logit multipliers (Gemma, Granite). */
void slmc_scale_f32(float *out, const float *x, int count, float factor) {
    for (int i = 0; i < count; i++) out[i] = x[i] * factor;
}
