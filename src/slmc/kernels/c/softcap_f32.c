#include "slmc_kernels.h"

/* cap * tanh(x / cap): Gemma 2's soft-capping of the logits, in transformers' order of operations. */
void slmc_softcap_f32(float *out, const float *x, int count, float cap) {
    for (int i = 0; i < count; i++) out[i] = tanhf(x[i] / cap) * cap;
}
