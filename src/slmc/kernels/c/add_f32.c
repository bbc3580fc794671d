#include "slmc_kernels.h"

void slmc_add_f32(float *out, const float *a, const float *b, int count) {
    for (int i = 0; i < count; i++) out[i] = a[i] + b[i];
}
