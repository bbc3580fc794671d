#include "slmc_kernels.h"

/* x * sigmoid(x) of an ungated FFN, in swiglu_f32.c's order of operations. */
void slmc_silu_f32(float *out, const float *x, int count) {
    for (int i = 0; i < count; i++) {
        float v = x[i];
        out[i] = v * (1.0f / (1.0f + expf(-v)));
    }
}
