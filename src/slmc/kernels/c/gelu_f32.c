#include "slmc_kernels.h"

/* approximate = 0: the exact erf form; 1: GPT-2's tanh form. */
void slmc_gelu_f32(float *out, const float *x, int count, int approximate) {
    for (int i = 0; i < count; i++) {
        float v = x[i];
        if (approximate) out[i] = 0.5f * v * (1.0f + tanhf(0.7978845608028654f * (v + 0.044715f * v * v * v)));
        else out[i] = 0.5f * v * (1.0f + erff(v * 0.7071067811865476f));
    }
}
