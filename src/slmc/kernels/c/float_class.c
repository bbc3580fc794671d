#include "slmc_kernels.h"

/* ONNX IsNaN and IsInf: out[i] (bool, one byte) from the bits of x[i], so that no compiler flag
 * (-ffast-math's "no NaNs") can fold the test away. IsInf: pos and neg select +inf and -inf. */
void slmc_isnan_f32(uint8_t *out, const float *x, int n) {
    for (int i = 0; i < n; i++) {
        uint32_t b;
        memcpy(&b, x + i, 4);
        out[i] = (b & 0x7fffffffu) > 0x7f800000u;
    }
}

void slmc_isnan_f64(uint8_t *out, const double *x, int n) {
    for (int i = 0; i < n; i++) {
        uint64_t b;
        memcpy(&b, x + i, 8);
        out[i] = (b & 0x7fffffffffffffffull) > 0x7ff0000000000000ull;
    }
}

void slmc_isinf_f32(uint8_t *out, const float *x, int n, int pos, int neg) {
    for (int i = 0; i < n; i++) {
        uint32_t b;
        memcpy(&b, x + i, 4);
        out[i] = (b & 0x7fffffffu) == 0x7f800000u && ((b >> 31) ? neg : pos);
    }
}

void slmc_isinf_f64(uint8_t *out, const double *x, int n, int pos, int neg) {
    for (int i = 0; i < n; i++) {
        uint64_t b;
        memcpy(&b, x + i, 8);
        out[i] = (b & 0x7fffffffffffffffull) == 0x7ff0000000000000ull && ((b >> 63) ? neg : pos);
    }
}
