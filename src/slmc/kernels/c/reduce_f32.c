#include "slmc_kernels.h"

#define SLMC_MAX_RANK 8
int slmc_nd_next(int32_t *idx, const int32_t *shape, int dims, ptrdiff_t *off, const int32_t *str, int ld, int nops);

/* ONNX Reduce* over any set of axes: the kept axes (kshape, x strides kstr) index the contiguous
 * output, the reduced axes (rshape, rstr) are summed (or max'ed, ...) for each. An empty reduced set
 * gives the identity: 0, 1, -inf or +inf. op codes (kernels/onnx.py REDUCE): 0 Sum 1 Mean 2 Max 3 Min
 * 4 Prod 5 SumSquare 6 L1 7 L2 8 LogSum 9 LogSumExp. */
void slmc_reduce_f32(float *out, const float *x, int op, int krank, const int32_t *kshape, const int32_t *kstr,
                     int rrank, const int32_t *rshape, const int32_t *rstr) {
    int32_t kidx[SLMC_MAX_RANK] = {0};
    ptrdiff_t koff = 0;
    int count = 1;
    for (int d = 0; d < rrank; d++) count *= rshape[d];
    float *o = out;
    do {
        const float *xb = x + koff;
        float acc = op == 4 ? 1.0f : op == 2 || op == 9 ? -INFINITY : op == 3 ? INFINITY : 0.0f;
        if (op == 9 && count) { /* log-sum-exp around the maximum, which cannot overflow */
            int32_t ridx[SLMC_MAX_RANK] = {0};
            ptrdiff_t roff = 0;
            float mx = -INFINITY, s = 0.0f;
            do { if (xb[roff] > mx) mx = xb[roff]; } while (slmc_nd_next(ridx, rshape, rrank, &roff, rstr, rrank, 1));
            do s += expf(xb[roff] - mx); while (slmc_nd_next(ridx, rshape, rrank, &roff, rstr, rrank, 1));
            acc = logf(s) + mx;
        } else if (count) {
            int32_t ridx[SLMC_MAX_RANK] = {0};
            ptrdiff_t roff = 0;
            do {
                float v = xb[roff];
                switch (op) {
                case 0: case 1: case 8: acc += v; break;
                case 2: if (v > acc || v != v) acc = v; break;
                case 3: if (v < acc || v != v) acc = v; break;
                case 4: acc *= v; break;
                case 5: case 7: acc += v * v; break;
                case 6: acc += fabsf(v); break;
                }
            } while (slmc_nd_next(ridx, rshape, rrank, &roff, rstr, rrank, 1));
        }
        if (op == 1) acc /= (float)count;
        else if (op == 7) acc = sqrtf(acc);
        else if (op == 8) acc = logf(acc);
        *o++ = acc;
    } while (slmc_nd_next(kidx, kshape, krank, &koff, kstr, krank, 1));
}

/* ONNX ArgMax/ArgMin along one axis of x viewed as [outer, n, inner]: the first (or, with
 * select_last, the last) index of the extreme. */
void slmc_argreduce_f32(int64_t *out, const float *x, int is_min, int select_last, int outer, int n, int inner) {
    for (int o = 0; o < outer; o++)
        for (int i = 0; i < inner; i++) {
            const float *v = x + (size_t)o * n * inner + i;
            int best = 0;
            for (int j = 1; j < n; j++) {
                float a = v[(size_t)j * inner], b = v[(size_t)best * inner];
                int better = is_min ? (a < b || (select_last && a == b)) : (a > b || (select_last && a == b));
                if (better) best = j;
            }
            out[(size_t)o * inner + i] = best;
        }
}
