#include "slmc_kernels.h"

/* out = gelu(g) * u, the GeGLU gate (Gemma: approximate = 1, the tanh form; 0: the exact erf form),
 * gelu_f32.c's arithmetic on the gate. */
void slmc_geglu_f32(float *out, const float *g, const float *u, int count, int approximate) {
    for (int i = 0; i < count; i++) {
        float v = g[i];
        if (approximate) v = 0.5f * v * (1.0f + tanhf(0.7978845608028654f * (v + 0.044715f * v * v * v)));
        else v = 0.5f * v * (1.0f + erff(v * 0.7071067811865476f));
        out[i] = v * u[i];
    }
}
