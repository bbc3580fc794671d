#include "slmc_kernels.h"

/* out = silu(g) * u, the SwiGLU gate, in llama2.c's order of operations. */
void slmc_swiglu_f32(float *out, const float *g, const float *u, int count) {
    for (int i = 0; i < count; i++) {
        float v = g[i];
        v = v * (1.0f / (1.0f + expf(-v)));
        out[i] = v * u[i];
    }
}
