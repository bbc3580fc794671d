#include "slmc_kernels.h"

#define SLMC_MAX_RANK 8

/* ONNX Resize on float32 from per-axis tap tables (ir/resize.py): along axis d, output position o reads the
 * taps[d] input positions idx[d][o][t] with weights w[d][o][t]; an output element is the sum over every
 * combination of its axes' taps of the weights' product times the input there (the separable resize, all
 * axes at once), or `extrap` where an axis's row starts with -1 (tf_crop_and_resize outside the input).
 * g holds {rank, in_shape[rank], out_shape[rank], taps[rank]}; the tables are the axes' rows concatenated.
 * y must not overlap x. */

void slmc_resize_f32(float *y, const float *x, const int32_t *idx, const float *w, float extrap, const int32_t *g) {
    int32_t r = g[0];
    const int32_t *in = g + 1, *out = g + 1 + r, *taps = g + 1 + 2 * r;
    int32_t o[SLMC_MAX_RANK] = {0}, t[SLMC_MAX_RANK];
    size_t row[SLMC_MAX_RANK], stride[SLMC_MAX_RANK], total = 1, base = 0;
    for (int32_t d = r - 1; d >= 0; d--) {
        stride[d] = d == r - 1 ? 1 : stride[d + 1] * (size_t)in[d + 1];
        total *= (size_t)out[d];
    }
    for (int32_t d = 0; d < r; d++) {
        row[d] = base;
        base += (size_t)out[d] * taps[d];
    }
    for (size_t e = 0; e < total; e++) {
        int outside = 0;
        for (int32_t d = 0; d < r; d++) outside |= idx[row[d] + (size_t)o[d] * taps[d]] < 0;
        float acc = 0.0f;
        if (!outside) {
            for (int32_t d = 0; d < r; d++) t[d] = 0;
            for (;;) {
                float wt = 1.0f;
                size_t at = 0;
                for (int32_t d = 0; d < r; d++) {
                    size_t k = row[d] + (size_t)o[d] * taps[d] + t[d];
                    wt *= w[k];
                    at += (size_t)idx[k] * stride[d];
                }
                if (wt != 0.0f) acc += wt * x[at];
                int32_t d = r - 1;
                while (d >= 0 && ++t[d] == taps[d]) t[d--] = 0;
                if (d < 0) break;
            }
        }
        y[e] = outside ? extrap : acc;
        for (int32_t d = r - 1; d >= 0 && ++o[d] == out[d]; d--) o[d] = 0;
    }
}
