#include "slmc_kernels.h"

/* max(x, 0): OPT's FFN activation. */
void slmc_relu_f32(float *out, const float *x, int count) {
    for (int i = 0; i < count; i++) out[i] = x[i] > 0.0f ? x[i] : 0.0f;
}
