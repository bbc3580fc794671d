#include "slmc_kernels.h"

/* ONNX Trilu over `batch` matrices rows x cols (elem bytes each): keep the upper (j - i >= k) or
 * lower (j - i <= k) triangle, zero the rest. */
void slmc_trilu(void *out, const void *x, int elem, int batch, int rows, int cols, int k, int upper) {
    const uint8_t *s = (const uint8_t *)x;
    uint8_t *o = (uint8_t *)out;
    for (int b = 0; b < batch; b++)
        for (int i = 0; i < rows; i++)
            for (int j = 0; j < cols; j++, s += elem, o += elem) {
                int keep = upper ? j - i >= k : j - i <= k;
                if (keep) memcpy(o, s, (size_t)elem);
                else memset(o, 0, (size_t)elem);
            }
}
