#include "slmc_kernels.h"

/* com.microsoft QLinearSigmoid / QLinearLeakyRelu, as onnxruntime runs them: each 8-bit code indexes a
 * 256-entry table (byte order), which the compiler built exactly as onnxruntime builds it when its session
 * starts (reference/quant_lut_ops.py). */

void slmc_qlinear_lookup(uint8_t *y, const uint8_t *x, const uint8_t *table, size_t n) {
    for (size_t i = 0; i < n; i++) y[i] = table[x[i]];
}
