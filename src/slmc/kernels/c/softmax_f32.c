#include "slmc_kernels.h"

/* ONNX Softmax / LogSoftmax along the middle axis of x viewed as [outer, n, inner] (inner 1 for the
 * last axis; the opset < 13 form, which normalises everything after `axis`, is inner 1 too). The
 * maximum is subtracted first, so large logits cannot overflow. */
void slmc_softmax_f32(float *out, const float *x, int outer, int n, int inner, int log_softmax) {
    for (int o = 0; o < outer; o++)
        for (int i = 0; i < inner; i++) {
            const float *v = x + (size_t)o * n * inner + i;
            float *y = out + (size_t)o * n * inner + i;
            float mx = -INFINITY, sum = 0.0f;
            for (int j = 0; j < n; j++) if (v[(size_t)j * inner] > mx) mx = v[(size_t)j * inner];
            for (int j = 0; j < n; j++) {
                float e = expf(v[(size_t)j * inner] - mx);
                if (!log_softmax) y[(size_t)j * inner] = e;
                sum += e;
            }
            if (log_softmax) {
                float ls = logf(sum);
                for (int j = 0; j < n; j++) y[(size_t)j * inner] = v[(size_t)j * inner] - mx - ls;
            } else {
                for (int j = 0; j < n; j++) y[(size_t)j * inner] /= sum;
            }
        }
}
